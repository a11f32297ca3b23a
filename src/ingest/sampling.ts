/**
 * Sampling plans: pure functions from a `ProbeResult` and a `Sampling` to clips of planned
 * timestamps. No I/O. Times are on the stream's presentation timeline (the first frame is at
 * `probe.startTime`, usually 0); the video spans [startTime, startTime + duration).
 *
 * Each way of sampling is a `Sampler` in its own file under `sampling/`, and `SAMPLERS` below
 * is the one list of them: the `Sampling` type, its checks, the CLI form and its help are all
 * read from it. Adding one is its file plus its line here.
 */
import { IngestError } from '../errors.js';
import { Registry, type NameOf, type TableOf } from '../registry.js';
import {
  conflict,
  invalid,
  isPlainObject,
  LIMITS,
  nonNegativeNumber,
  positiveInteger,
  positiveNumber,
} from '../validate.js';
import type { ClipPlan, ProbeResult } from './types.js';
import { clean, type Sampler, type Timeline } from './sampling/timeline.js';
import { uniform } from './sampling/uniform.js';
import { fps } from './sampling/fps.js';
import { window } from './sampling/window.js';

export type { Sampler } from './sampling/timeline.js';

type AnySampler = Sampler<{ frames: number }>;

/** The samplers, by the name that `kind` and the CLI form take. The first is the default. */
export const SAMPLERS = new Registry<
  { uniform: typeof uniform; fps: typeof fps; window: typeof window },
  AnySampler
>('sampler', { uniform, fps, window });

export type SamplerName = NameOf<typeof SAMPLERS>;
type OptionsOf<S> = S extends Sampler<infer O> ? O : never;

/** The part of the video any sampling may be narrowed to (a manifest row's span). */
export interface SamplingSpan {
  /** Seconds on the stream timeline. @default the first frame */
  start?: number;
  /** @default the end of the video */
  end?: number;
}

/** How to choose clips and frames: `{ kind }` names a sampler, the rest are its options, and `start`/`end` the part sampled. */
export type Sampling = {
  [K in SamplerName]: { kind: K } & OptionsOf<TableOf<typeof SAMPLERS>[K]> & SamplingSpan;
}[SamplerName];

/** The CLI forms, `uniform | fps:<n>[/<stride>] | ...`, for `--help`. */
export function samplingForms(): string {
  return SAMPLERS.entries()
    .map(([, sampler]) => sampler.form)
    .join(' | ');
}

/** Validates a `Sampling` (a TypeError naming the field otherwise) and returns a clean copy. */
export function validateSampling(value: unknown, field = 'sampling'): Sampling {
  if (!isPlainObject(value)) throw invalid(field, 'a sampling object', value);
  const kind = SAMPLERS.check(`${field}.kind`, value.kind);
  const frames = positiveInteger(`${field}.frames`, value.frames, LIMITS.frames);
  return {
    kind,
    ...SAMPLERS.get(kind).validate(value, field, frames),
    ...validateSpan(value, field),
  } as Sampling;
}

function validateSpan(value: Record<string, unknown>, field: string): SamplingSpan {
  const span: SamplingSpan = {};
  if (value.start !== undefined) span.start = nonNegativeNumber(`${field}.start`, value.start);
  if (value.end !== undefined) span.end = positiveNumber(`${field}.end`, value.end);
  if (span.start !== undefined && span.end !== undefined && span.end <= span.start) {
    throw conflict(
      `${field}.start`,
      `${field}.end`,
      `the end (${span.end}) must come after the start (${span.start})`,
    );
  }
  return span;
}

/**
 * Parses the CLI form: a sampler's name, then `:` and its arguments (`uniform`, `fps:<n>`,
 * `fps:<n>/<stride frames>`, `window:<length s>/<stride s>`); `frames` is T. Throws a
 * TypeError naming `field`.
 */
export function parseSampling(text: string, frames: number, field = 'sampling'): Sampling {
  positiveInteger('frames', frames, LIMITS.frames);
  if (typeof text !== 'string') throw invalid(field, 'a sampling string', text);
  const value = text.trim();
  const colon = value.indexOf(':');
  const kind = colon < 0 ? value : value.slice(0, colon);
  const options = SAMPLERS.has(kind)
    ? SAMPLERS.get(kind).parse(colon < 0 ? undefined : value.slice(colon + 1), frames)
    : undefined;
  if (options) return { kind, ...options } as Sampling;
  const forms = SAMPLERS.entries().map(([, sampler]) => `'${sampler.form}'`);
  throw invalid(field, `${forms.slice(0, -1).join(', ')} or ${forms.at(-1)} (seconds)`, text);
}

/** The sampling for a manifest row that names a span of the video: the same, over that span. */
export function samplingForSpan(sampling: Sampling, span: SamplingSpan): Sampling {
  if (span.start === undefined && span.end === undefined) return sampling;
  return {
    ...sampling,
    ...(span.start !== undefined ? { start: span.start } : {}),
    ...(span.end !== undefined ? { end: span.end } : {}),
  };
}

/** True when training may draw extra clips as ordered subsets of a larger T under `sampling`. */
export function samplingTakesSubsets(sampling: Sampling): boolean {
  return SAMPLERS.get(sampling.kind).subsets === true;
}

/** The video's timeline, and the part of it `span` asks for; a span outside the video is that video's `OUT_OF_RANGE`. */
function timelineOf(probe: ProbeResult, span: SamplingSpan): Timeline {
  if (!isPlainObject(probe)) throw invalid('probe', 'a ProbeResult', probe);
  const t0 = finiteNumber('probe.startTime', probe.startTime);
  const duration = positiveNumber('probe.duration', probe.duration);
  const fps = positiveNumber('probe.avgFrameRate', probe.avgFrameRate || probe.nominalFrameRate);
  const path = typeof probe.path === 'string' ? probe.path : '';
  const end = t0 + duration;
  const from = span.start !== undefined ? Math.max(t0, span.start) : t0;
  const to = span.end !== undefined ? Math.min(end, span.end) : end;
  if (!(to > from)) {
    // A fact about this video (a manifest row's span), not a bad option: its record says so.
    const asked = `${span.start ?? clean(t0)}-${span.end ?? clean(end)} s`;
    throw new IngestError(
      'OUT_OF_RANGE',
      path,
      `${path}: the span ${asked} lies outside the video (${clean(t0)}-${clean(end)} s)`,
    );
  }
  return { path, t0, end, fps, from, to };
}

function finiteNumber(field: string, value: unknown): number {
  // Some streams start slightly before 0 (negative start_time from edit lists); keep them.
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(field, 'a finite number', value);
  return value;
}

/**
 * How many clips `planClips(probe, sampling)` returns, without building them: a caller checks
 * what a plan will cost (`fps:1000` on a 3-hour video is 675,000 clips of 16) before it
 * allocates anything for it.
 */
export function clipCount(probe: ProbeResult, sampling: Sampling): number {
  const s = validateSampling(sampling);
  return (SAMPLERS.get(s.kind) as AnySampler).count(timelineOf(probe, s), s);
}

/**
 * The clips of a video under `sampling`. Pure; throws a TypeError for bad arguments, and an
 * `IngestError` with code `OUT_OF_RANGE` for a span (`start`, `end`) outside the video.
 */
export function planClips(probe: ProbeResult, sampling: Sampling): ClipPlan[] {
  const s = validateSampling(sampling);
  return (SAMPLERS.get(s.kind) as AnySampler).plan(timelineOf(probe, s), s);
}
