/** JSONL: one JSON record per video, in a file or on stdout (`--out -`). */
import type { ErrorRecord } from '../../embedding/runner.js';
import type { OutputOpenOptions } from '../sinks.js';
import type { OutputFormatEntry, RecordOptions, ResultWriter } from './entry.js';

/** A writer of one JSON line per result, as `record` builds it. */
async function jsonLines<R>(
  out: string,
  options: OutputOpenOptions,
  record: (result: R | ErrorRecord, options: RecordOptions) => object,
): Promise<ResultWriter<R>> {
  const { openJsonl } = await import('../sinks.js');
  const { sink, resume } = await openJsonl(out, options);
  return {
    resume,
    write: (result, recordOptions = {}) => sink.writeLine(JSON.stringify(record(result, recordOptions))),
    close: () => sink.close(),
  };
}

export const jsonl: OutputFormatEntry = {
  help: 'one JSON record per video',
  extension: '.jsonl',
  writers: {
    async embed(out, options) {
      const { embedRecord } = await import('../records.js');
      return jsonLines(out, options, (result, { frameEmbeddings }) =>
        embedRecord(result, { frames: frameEmbeddings }),
      );
    },
    async classify(out, options) {
      const { classifyRecord } = await import('../records.js');
      return jsonLines(out, options, (result, { labels, probs }) =>
        classifyRecord(result, { labels, probs }),
      );
    },
  },
};
