/** The `cli` decoder's registry entry: ffprobe and one ffmpeg process per video. */
import type { DecoderEntry } from '../../decoders.js';

export const cli: DecoderEntry = {
  help: 'the ffmpeg CLI, one process per video',
  async open(reason) {
    const [{ extractCli }, { probeCli }] = await Promise.all([import('./extract.js'), import('./probe.js')]);
    return {
      name: 'cli',
      reason,
      probe: (path, options) => probeCli(path, options),
      async decode(path, plans, options) {
        const clips = await extractCli(path, plans, options, (p) =>
          probeCli(p, { signal: options.signal, timeoutMs: options.timeoutMs ?? 30_000 }),
        );
        return clips.map((clip) => ({ ...clip, decoder: 'cli' }));
      },
    };
  },
};
