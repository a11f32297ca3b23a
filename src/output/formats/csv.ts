/**
 * CSV: one row per video under a header, for spreadsheets (classify only: an embedding is no
 * cell); a frame model's has one row per segment.
 */
import type { OutputFormatEntry } from './entry.js';

export const csv: OutputFormatEntry = {
  help: 'one row per video; per segment for a frame model',
  extension: '.csv',
  writers: {
    async classify(out, options) {
      const { openCsv } = await import('../sinks.js');
      const { CLASSIFY_CSV_HEADER, classifyCsvRow, SEGMENTS_CSV_HEADER, segmentCsvRows } = await import(
        '../records.js'
      );
      if (options.mode === 'frame') {
        const { sink, resume } = await openCsv(out, SEGMENTS_CSV_HEADER, options);
        return {
          resume,
          // A video's rows go out in one write, as one record.
          async write(result) {
            const rows = segmentCsvRows(result);
            if (rows.length > 0) await sink.writeLine(rows.join('\n'));
          },
          close: () => sink.close(),
        };
      }
      const { sink, resume } = await openCsv(out, CLASSIFY_CSV_HEADER, options);
      return { resume, write: (result) => sink.writeLine(classifyCsvRow(result)), close: () => sink.close() };
    },
  },
};
