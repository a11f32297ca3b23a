/** CSV: one row per video under a header, for spreadsheets (classify only: an embedding is no cell). */
import type { OutputFormatEntry } from './entry.js';

export const csv: OutputFormatEntry = {
  help: 'one row per video',
  extension: '.csv',
  writers: {
    async classify(out, options) {
      const { openCsv } = await import('../sinks.js');
      const { CLASSIFY_CSV_HEADER, classifyCsvRow } = await import('../records.js');
      const { sink, resume } = await openCsv(out, CLASSIFY_CSV_HEADER, options);
      return { resume, write: (result) => sink.writeLine(classifyCsvRow(result)), close: () => sink.close() };
    },
  },
};
