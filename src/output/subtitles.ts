/**
 * A frame model's segments as subtitles: WebVTT (W3C WebVTT, `HH:MM:SS.mmm`) and SubRip
 * (`HH:MM:SS,mmm`, numbered cues), one cue per segment whose text is its label. Times are
 * rounded to the millisecond; a segment that rounds to nothing gives no cue.
 */
import type { ScoredSegment } from '../evaluation/timeline.js';

/** `seconds` as `HH:MM:SS<sep>mmm`. */
export function subtitleTime(seconds: number, sep: '.' | ','): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${sep}${pad(ms % 1000, 3)}`;
}

/** The cues of `segments`, as `[start, end, label]` with both times formatted. */
function cues(segments: readonly ScoredSegment[], sep: '.' | ','): Array<[string, string, string]> {
  return (
    segments
      .filter((s) => Math.round(s.end * 1000) > Math.round(s.start * 1000))
      // A cue's text ends at a blank line, so a label never holds a line break.
      .map((s) => [
        subtitleTime(s.start, sep),
        subtitleTime(s.end, sep),
        s.label.replace(/\s*[\r\n]+\s*/g, ' '),
      ])
  );
}

/** The cues of a WebVTT file, after its `WEBVTT` line: a blank line, then each cue. */
export function webvttCues(segments: readonly ScoredSegment[]): string {
  return cues(segments, '.')
    .map(([a, b, text]) => `\n${a} --> ${b}\n${text.replace(/-->/g, '->')}\n`)
    .join('');
}

/** A whole WebVTT file. */
export function webvttText(segments: readonly ScoredSegment[]): string {
  return `WEBVTT\n${webvttCues(segments)}`;
}

/** A whole SubRip file. */
export function srtText(segments: readonly ScoredSegment[]): string {
  return cues(segments, ',')
    .map(([a, b, text], i) => `${i + 1}\n${a} --> ${b}\n${text}\n`)
    .join('\n');
}
