/** The `cli` decoder's registry entry: ffprobe and one ffmpeg process per video. */
import type { DecoderEntry } from '../../decoders.js';
import { openVideo } from '../open-video.js';

export const cli: DecoderEntry = {
  help: 'the ffmpeg CLI, one process per video',
  async open(reason) {
    const [{ extractCli }, { probeCli }] = await Promise.all([import('./extract.js'), import('./probe.js')]);
    return {
      name: 'cli',
      reason,
      open: (path, options) =>
        openVideo(path, options, probeCli, async (metadata, plans, o) => {
          const clips = await extractCli(path, metadata, plans, o);
          return clips.map((clip) => ({ ...clip, decoder: 'cli' }));
        }),
    };
  },
};
