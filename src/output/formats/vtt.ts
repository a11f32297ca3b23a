/** WebVTT: a frame model's segments as cues, one file per video (a folder for several). */
import type { OutputFormatEntry } from './entry.js';
import { subtitleWriter } from './subtitles.js';

export const vtt: OutputFormatEntry = {
  help: 'frame models: WebVTT, a cue per segment; a file for one video, else a folder',
  extension: '.vtt',
  writers: {
    classify: subtitleWriter({
      name: 'vtt',
      extension: '.vtt',
      first: /^WEBVTT$/,
      header: 'WEBVTT',
      body: async (result) => (await import('../subtitles.js')).webvttCues(result.segments ?? []),
    }),
  },
};
