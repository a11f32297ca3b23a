/** SubRip: a frame model's segments as numbered cues, one file per video (a folder for several). */
import type { OutputFormatEntry } from './entry.js';
import { subtitleWriter } from './subtitles.js';

export const srt: OutputFormatEntry = {
  help: 'frame models: SubRip, a cue per segment; a file for one video, else a folder',
  extension: '.srt',
  writers: {
    classify: subtitleWriter({
      name: 'srt',
      extension: '.srt',
      first: /^\d+$/,
      body: async (result) => (await import('../subtitles.js')).srtText(result.segments ?? []),
    }),
  },
};
