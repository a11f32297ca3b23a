/**
 * The records framewise writes, built from task results: the JSONL line of `embed`, the
 * `index.jsonl` line and `.npy` file of `embed --format npy`, and the JSONL line and CSV row
 * of `classify`. The CLI writes exactly these, so a library user who calls them gets the
 * same files. Error records are written as they are.
 */
import { isErrorRecord, spanOf, type ErrorRecord } from '../embedding/runner.js';
import { csvRow } from '../fs.js';
import type { ClassifyResult } from '../tasks/classify.js';
import type { EmbedResult } from '../tasks/embed.js';
import { encodeNpy, npyNameFor } from './npy.js';

/** Shortest number that reads back as the same float32. */
export function f32(x: number): number {
  return Number.parseFloat(x.toPrecision(9));
}

/** Scores to 6 significant digits. */
export function score6(x: number): number {
  return Number.parseFloat(x.toPrecision(6));
}

function vector(values: Float32Array): number[] {
  const out = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32(values[i]);
  return out;
}

/** What every embed record says about where its numbers come from. */
function embedHeader(result: EmbedResult): Record<string, unknown> {
  return {
    path: result.path,
    ...spanOf(result),
    ...(result.label !== undefined ? { label: result.label } : {}),
    backbone: result.backbone,
    ...(result.engine ? { engine: result.engine } : {}),
    ...(result.backend ? { backend: result.backend } : {}),
    ...(result.decoder ? { decoder: result.decoder } : {}),
    dim: result.dim,
  };
}

/** What the JSONL and npy index records say of each clip: its span, timestamps, mask and warnings. */
function clipHeader(c: EmbedResult['clips'][number]): object {
  return {
    start: c.start,
    end: c.end,
    timestamps: c.timestamps,
    mask: c.mask,
    ...(c.warnings ? { warnings: c.warnings } : {}),
  };
}

/** The JSONL record of one video: per clip its span, timestamps, mask and mean embedding (and, with `frames`, each frame's). */
export function embedRecord(result: EmbedResult | ErrorRecord, options: { frames?: boolean } = {}): object {
  if (isErrorRecord(result)) return result;
  return {
    ...embedHeader(result),
    clips: result.clips.map((c) => ({
      ...clipHeader(c),
      embedding: vector(c.embedding),
      ...(options.frames
        ? {
            frames: Array.from({ length: result.frameCount }, (_, t) =>
              vector(c.frames.subarray(t * result.dim, (t + 1) * result.dim)),
            ),
          }
        : {}),
    })),
  };
}

/** The `.npy` of one video: its file name (unique per path and span) and bytes, float32 [clips, T, D]. */
export function npyFile(result: EmbedResult): { name: string; bytes: Buffer } {
  return {
    name: npyNameFor(result.path, spanOf(result)),
    bytes: encodeNpy(result.embeddings, [result.clips.length, result.frameCount, result.dim]),
  };
}

/** The `index.jsonl` record of one video written as `npy` (its file `name` from `npyFile`). */
export function npyIndexRecord(result: EmbedResult | ErrorRecord, name?: string): object {
  if (isErrorRecord(result)) return result;
  return {
    ...embedHeader(result),
    npy: name ?? npyNameFor(result.path, spanOf(result)),
    shape: [result.clips.length, result.frameCount, result.dim],
    clips: result.clips.map(clipHeader),
  };
}

/** The JSONL record of one prediction; with `probs`, the video-level probability of every label. */
export function classifyRecord(
  result: ClassifyResult | ErrorRecord,
  options: { labels?: readonly string[]; probs?: boolean } = {},
): object {
  if (isErrorRecord(result)) return result;
  const r = result;
  if (options.probs && !options.labels) throw new TypeError('classifyRecord: `probs` needs `labels`');
  return {
    path: r.path,
    ...spanOf(r),
    label: r.label,
    score: score6(r.score),
    topk: r.topk.map((t) => ({ label: t.label, score: score6(t.score) })),
    ...(options.probs
      ? { probs: Object.fromEntries(options.labels!.map((l, i) => [l, score6(r.probs[i])])) }
      : {}),
    clips: r.clips.map((c) => ({ start: c.start, end: c.end, label: c.label, score: score6(c.score) })),
    ...(r.segments
      ? {
          segments: r.segments.map((s) => ({
            start: s.start,
            end: s.end,
            label: s.label,
            score: score6(s.score),
          })),
        }
      : {}),
    ...(r.frames
      ? { frames: r.frames.map((f) => ({ t: f.t, label: f.label, score: score6(f.score) })) }
      : {}),
    ...(r.warnings ? { warnings: r.warnings } : {}),
  };
}

/** The columns of `classify`'s CSV. */
export const CLASSIFY_CSV_HEADER = [
  'path',
  'label',
  'score',
  'topk',
  'error_code',
  'error_message',
  'warnings',
  'start',
  'end',
] as const;

/** One CSV row (no line end) of `classify`'s CSV, in `CLASSIFY_CSV_HEADER` order. */
export function classifyCsvRow(result: ClassifyResult | ErrorRecord): string {
  const span = [result.start ?? '', result.end ?? ''];
  if (isErrorRecord(result))
    return csvRow([result.path, '', '', '', result.error.code, result.error.message, '', ...span]);
  return csvRow([
    result.path,
    result.label,
    score6(result.score),
    result.topk.map((t) => `${t.label}:${score6(t.score)}`).join(';'),
    '',
    '',
    (result.warnings ?? []).join(' | '),
    ...span,
  ]);
}

/**
 * The columns of a frame model's `classify` CSV: one row per segment. `span_start` and
 * `span_end` are the manifest row's span (the unit `--resume` counts), `start` and `end` the segment's.
 */
export const SEGMENTS_CSV_HEADER = [
  'path',
  'start',
  'end',
  'label',
  'score',
  'error_code',
  'error_message',
  'warnings',
  'span_start',
  'span_end',
] as const;

/** The rows (no line ends) of one video in a frame model's CSV, in `SEGMENTS_CSV_HEADER` order: one per segment, or one for an error. */
export function segmentCsvRows(result: ClassifyResult | ErrorRecord): string[] {
  const span = [result.start ?? '', result.end ?? ''];
  if (isErrorRecord(result))
    return [csvRow([result.path, '', '', '', '', result.error.code, result.error.message, '', ...span])];
  const warnings = (result.warnings ?? []).join(' | ');
  return (result.segments ?? []).map((s) =>
    csvRow([result.path, s.start, s.end, s.label, score6(s.score), '', '', warnings, ...span]),
  );
}
