/** npy: a folder of one float32 [clips, T, D] `.npy` per video, and an `index.jsonl` that lists them. */
import { isErrorRecord } from '../../embedding/runner.js';
import type { OutputFormatEntry } from './entry.js';

export const npy: OutputFormatEntry = {
  help: 'a folder: one .npy per video and index.jsonl',
  folder: true,
  writers: {
    async embed(out, options) {
      const { openFolder } = await import('../sinks.js');
      const { npyFile, npyIndexRecord } = await import('../records.js');
      const { sink, resume } = await openFolder(out, options);
      return {
        resume,
        async write(result) {
          if (isErrorRecord(result)) return sink.writeLine(JSON.stringify(npyIndexRecord(result)));
          const file = npyFile(result);
          await sink.writeFile(file.name, file.bytes);
          await sink.writeLine(JSON.stringify(npyIndexRecord(result, file.name)));
        },
        close: () => sink.close(),
      };
    },
  },
};
