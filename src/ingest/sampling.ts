/**
 * Sampling plans: pure functions from a `ProbeResult` and a `Sampling` to clips of planned
 * timestamps. No I/O. Times are on the stream's presentation timeline (the first frame is at
 * `probe.startTime`, usually 0); the video spans [startTime, startTime + duration).
 *
 * Each way of sampling is a `Sampler` in its own file under `sampling/`, and `SAMPLERS` below
 * is the one list of them: the `Sampling` type, its checks, the CLI form and its help are all
 * read from it. Adding one is its file plus its line here.
 */
import { invalid, isPlainObject, LIMITS, oneOf, positiveInteger, positiveNumber } from '../validate.js';
import type { ClipPlan, ProbeResult } from './types.js';
import type { Sampler, Timeline } from './sampling/timeline.js';
import { uniform } from './sampling/uniform.js';
import { fps } from './sampling/fps.js';
import { window } from './sampling/window.js';

export type { Sampler } from './sampling/timeline.js';

/** The samplers, by the name that `kind` and the CLI form take. The first is the default. */
export const SAMPLERS = { uniform, fps, window };

export type SamplerName = keyof typeof SAMPLERS;
type OptionsOf<S> = S extends Sampler<infer O> ? O : never;

/** How to choose clips and frames: `{ kind }` names a sampler, the rest are its options. */
export type Sampling = { [K in SamplerName]: { kind: K } & OptionsOf<(typeof SAMPLERS)[K]> }[SamplerName];

type AnySampler = Sampler<{ frames: number }>;

function samplerOf(kind: string): AnySampler {
  return (SAMPLERS as Record<string, AnySampler>)[kind];
}

function names(): string[] {
  return Object.keys(SAMPLERS);
}

/** The CLI forms, `uniform | fps:<n>[/<stride>] | ...`, for `--help`. */
export function samplingForms(): string {
  return names().map((name) => samplerOf(name).form).join(' | ');
}

/** Validates a `Sampling` (a TypeError naming the field otherwise) and returns a clean copy. */
export function validateSampling(value: unknown, field = 'sampling'): Sampling {
  if (!isPlainObject(value)) throw invalid(field, 'a sampling object', value);
  const kind = oneOf(`${field}.kind`, value.kind, names());
  const frames = positiveInteger(`${field}.frames`, value.frames, LIMITS.frames);
  return { kind, ...samplerOf(kind).validate(value, field, frames) } as Sampling;
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
  const options = Object.hasOwn(SAMPLERS, kind) ? samplerOf(kind).parse(colon < 0 ? undefined : value.slice(colon + 1), frames) : undefined;
  if (options) return { kind, ...options } as Sampling;
  const forms = names().map((name) => `'${samplerOf(name).form}'`);
  throw invalid(field, `${forms.slice(0, -1).join(', ')} or ${forms.at(-1)} (seconds)`, text);
}

/** The sampling for a manifest row that names a span of the video (samplers that take one). */
export function samplingForSpan(sampling: Sampling, span: { start?: number; end?: number }): Sampling {
  const narrow = samplerOf(sampling.kind).span;
  if (!narrow || (span.start === undefined && span.end === undefined)) return sampling;
  return { kind: sampling.kind, ...narrow(sampling, span) } as Sampling;
}

/** True when training may draw extra clips as ordered subsets of a larger T under `sampling`. */
export function samplingTakesSubsets(sampling: Sampling): boolean {
  return samplerOf(sampling.kind).subsets === true;
}

function timelineOf(probe: ProbeResult): Timeline {
  if (!isPlainObject(probe)) throw invalid('probe', 'a ProbeResult', probe);
  const t0 = finiteNumber('probe.startTime', probe.startTime);
  const duration = positiveNumber('probe.duration', probe.duration);
  const fps = positiveNumber('probe.avgFrameRate', probe.avgFrameRate || probe.nominalFrameRate);
  return { path: typeof probe.path === 'string' ? probe.path : '', t0, end: t0 + duration, fps };
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
  return samplerOf(s.kind).count(timelineOf(probe), s);
}

/**
 * The clips of a video under `sampling`. Pure; throws a TypeError for bad arguments, and an
 * `IngestError` with code `OUT_OF_RANGE` for a span (`start`, `end`) outside the video.
 */
export function planClips(probe: ProbeResult, sampling: Sampling): ClipPlan[] {
  const tl = timelineOf(probe);
  const s = validateSampling(sampling);
  return samplerOf(s.kind).plan(tl, s);
}
