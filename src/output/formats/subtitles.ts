/**
 * What the vtt and srt formats share: a frame model's segments as subtitle cues, to one file
 * (`--out video.vtt`, or `-`) for one video, or to a folder `--out` of one file per video,
 * named after it, with an `index.jsonl` that lists them (errors included) and that `--resume`
 * reads.
 */
import { UsageError } from '../../errors.js';
import { isErrorRecord, spanOf } from '../../embedding/runner.js';
import type { ClassifyResult } from '../../tasks/classify.js';
import type { OpenWriter } from './entry.js';

export interface SubtitleKind {
  /** The format's name, for messages. */
  name: string;
  /** The file extension, with its dot. */
  extension: string;
  /** The first line of every file framewise writes in this format. */
  first: RegExp;
  /** A line the file starts with, before any cue. */
  header?: string;
  /** The text after `header` for one video. */
  body: (result: ClassifyResult) => Promise<string>;
}

/** The file name of a video's subtitles in a folder: its own name (`stem`), with the span for a manifest row. */
function subtitleName(stem: string, span: { start?: number; end?: number }, extension: string): string {
  const spanPart =
    span.start === undefined && span.end === undefined ? '' : `_${span.start ?? 0}-${span.end ?? 'end'}`;
  return `${stem}${spanPart}${extension}`;
}

/** The classify writer of a subtitle format. */
export function subtitleWriter(kind: SubtitleKind): OpenWriter<ClassifyResult> {
  return async (out, options) => {
    if (options.mode !== 'frame') {
      throw new UsageError(
        `\`--format ${kind.name}\` writes a frame model's segments, and this is a clip model (one label per clip): use jsonl or csv`,
      );
    }
    const single = out === '-' || out.toLowerCase().endsWith(kind.extension);
    if (single) {
      if (options.videos !== undefined && options.videos > 1) {
        throw new UsageError(
          `\`--out ${out}\` holds one video's ${kind.name} and there are ${options.videos}: give a folder as --out for one file per video`,
        );
      }
      const { openSubtitleFile } = await import('../sinks.js');
      const { sink, resume } = await openSubtitleFile(out, kind.first, kind.header, options);
      return {
        resume,
        write: async (result) =>
          isErrorRecord(result) ? undefined : sink.writeLine(await kind.body(result)),
        close: () => sink.close(),
      };
    }
    const { openFolder } = await import('../sinks.js');
    const { fileStem, npyNameFor } = await import('../npy.js');
    const { sink, resume } = await openFolder(out, {
      ...options,
      settings: { ...options.settings, format: kind.name },
    });
    // Two videos of one name (from two folders) get the second a hash of its path.
    const taken = new Set<string>();
    return {
      resume,
      async write(result) {
        if (isErrorRecord(result)) return sink.writeLine(JSON.stringify(result));
        let name = subtitleName(fileStem(result.path), spanOf(result), kind.extension);
        if (taken.has(name)) name = npyNameFor(result.path, spanOf(result), kind.extension);
        taken.add(name);
        await sink.writeFile(
          name,
          Buffer.from(`${kind.header ? `${kind.header}\n` : ''}${await kind.body(result)}`),
        );
        await sink.writeLine(
          JSON.stringify({
            path: result.path,
            ...spanOf(result),
            file: name,
            label: result.label,
            segments: result.segments?.length ?? 0,
          }),
        );
      },
      close: () => sink.close(),
    };
  };
}
