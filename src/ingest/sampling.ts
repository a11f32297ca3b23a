/**
 * Sampling plans: pure functions from a `ProbeResult` and a `Sampling` to clips of planned
 * timestamps. No I/O. Times are on the stream's presentation timeline (the first frame is at
 * `probe.startTime`, usually 0); the video spans [startTime, startTime + duration).
 *
 * Strategies:
 * - `uniform`: T frames at the centres of T equal parts of [start, end] (default: the whole
 *   video). With `seed` (training), each frame moves to a reproducible random point inside
 *   its part instead of the centre.
 * - `fps`: frames at `fps` per second from the first frame, cut into clips of T frames;
 *   clip c starts at frame c * stride (default stride T: clips do not overlap).
 * - `window`: windows of `length` seconds every `stride` seconds; each window is one clip
 *   of T frames placed as `uniform` places them.
 *
 * Short videos (the padding rule): when a clip's span holds fewer than T frames, the clip
 * takes every real frame in the span at its own timestamp (start + i / fps), then repeats the
 * last one until it has T; `mask[k]` is true for the real frames and false for the repeats.
 * So a one-frame video still gives one full clip of T frames, the first of them real.
 */
import seedrandom from 'seedrandom';
import { IngestError } from '../errors.js';
import { conflict, invalid, isPlainObject, LIMITS, nonNegativeInteger, nonNegativeNumber, oneOf, positiveInteger, positiveNumber } from '../validate.js';
import type { ClipPlan, ProbeResult, Sampling } from './types.js';

/** Float tolerance for "is this frame inside the span", in frames. */
const EPS = 1e-6;

/** Validates a `Sampling` (a TypeError naming the field otherwise) and returns a clean copy. */
export function validateSampling(value: unknown, field = 'sampling'): Sampling {
  if (!isPlainObject(value)) throw invalid(field, 'a sampling object', value);
  const kind = oneOf(`${field}.kind`, value.kind, ['uniform', 'fps', 'window'] as const);
  const frames = positiveInteger(`${field}.frames`, value.frames, LIMITS.frames);
  if (kind === 'uniform') {
    const out: Sampling = { kind, frames };
    if (value.start !== undefined) out.start = nonNegativeNumber(`${field}.start`, value.start);
    if (value.end !== undefined) out.end = positiveNumber(`${field}.end`, value.end);
    if (out.start !== undefined && out.end !== undefined && out.end <= out.start) {
      throw conflict(`${field}.start`, `${field}.end`, `the end (${out.end}) must come after the start (${out.start})`);
    }
    if (value.seed !== undefined) out.seed = nonNegativeInteger(`${field}.seed`, value.seed, LIMITS.seed);
    return out;
  }
  if (kind === 'fps') {
    const out: Sampling = { kind, fps: positiveNumber(`${field}.fps`, value.fps, LIMITS.fps), frames };
    if (value.stride !== undefined) out.stride = positiveInteger(`${field}.stride`, value.stride);
    return out;
  }
  return { kind, length: positiveNumber(`${field}.length`, value.length), stride: positiveNumber(`${field}.stride`, value.stride), frames };
}

/**
 * Parses the CLI form: `uniform`, `fps:<n>` (or `fps:<n>/<stride frames>`),
 * `window:<length s>/<stride s>`; `frames` is T. Throws a TypeError naming `field`.
 */
export function parseSampling(text: string, frames: number, field = 'sampling'): Sampling {
  positiveInteger('frames', frames, LIMITS.frames);
  if (typeof text !== 'string') throw invalid(field, 'a sampling string', text);
  const value = text.trim();
  const n = '(\\d+(?:\\.\\d+)?|\\.\\d+)';
  if (value === 'uniform') return { kind: 'uniform', frames };
  let m = new RegExp(`^fps:${n}(?:/(\\d+))?$`).exec(value);
  if (m && Number(m[1]) > 0 && (m[2] === undefined || Number(m[2]) > 0)) {
    return m[2] === undefined ? { kind: 'fps', fps: Number(m[1]), frames } : { kind: 'fps', fps: Number(m[1]), frames, stride: Number(m[2]) };
  }
  m = new RegExp(`^window:${n}/${n}$`).exec(value);
  if (m && Number(m[1]) > 0 && Number(m[2]) > 0) return { kind: 'window', length: Number(m[1]), stride: Number(m[2]), frames };
  throw invalid(field, "'uniform', 'fps:<n>[/<stride>]' or 'window:<length>/<stride>' (seconds)", text);
}

interface Timeline {
  /** Time of frame 0. */
  t0: number;
  /** End of the video: t0 + duration. */
  end: number;
  /** Frame rate used to place real frames (average frame rate). */
  fps: number;
}

function timelineOf(probe: ProbeResult): Timeline {
  if (!isPlainObject(probe)) throw invalid('probe', 'a ProbeResult', probe);
  const t0 = nonNegativeNumberOrZero('probe.startTime', probe.startTime);
  const duration = positiveNumber('probe.duration', probe.duration);
  const fps = positiveNumber('probe.avgFrameRate', probe.avgFrameRate || probe.nominalFrameRate);
  return { t0, end: t0 + duration, fps };
}

function nonNegativeNumberOrZero(field: string, value: unknown): number {
  // Some streams start slightly before 0 (negative start_time from edit lists); keep them.
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(field, 'a finite number', value);
  return value;
}

/** Indices of the real frames whose time lies in [a, b): frame i is at t0 + i / fps. */
function framesIn(tl: Timeline, a: number, b: number): { first: number; count: number } {
  const first = Math.max(0, Math.ceil((a - tl.t0) * tl.fps - EPS));
  const last = Math.ceil((Math.min(b, tl.end) - tl.t0) * tl.fps - EPS) - 1; // inclusive
  return { first, count: Math.max(0, last - first + 1) };
}

/** Rounds away float noise (1e-9 s) so plans print and compare cleanly. */
function clean(t: number): number {
  return Math.round(t * 1e9) / 1e9;
}

/** T timestamps in [a, b): centres (or jittered points) of T equal parts, or the padding rule. */
function placeFrames(tl: Timeline, a: number, b: number, T: number, rand?: () => number): { timestamps: number[]; mask: boolean[] } {
  const { first, count } = framesIn(tl, a, b);
  if (count >= T) {
    const part = (b - a) / T;
    const timestamps = Array.from({ length: T }, (_, k) => clean(a + (k + (rand ? rand() : 0.5)) * part));
    return { timestamps, mask: Array<boolean>(T).fill(true) };
  }
  // Padding rule: every real frame in the span, then the last one repeated.
  const real = Math.max(1, count);
  const lastFrame = Math.max(0, Math.ceil((tl.end - tl.t0) * tl.fps - EPS) - 1);
  const firstFrame = count > 0 ? first : Math.min(first, lastFrame);
  const timestamps: number[] = [];
  const mask: boolean[] = [];
  for (let k = 0; k < T; k++) {
    const i = firstFrame + Math.min(k, real - 1);
    timestamps.push(clean(tl.t0 + i / tl.fps));
    mask.push(k < real);
  }
  return { timestamps, mask };
}

/**
 * How many clips `planClips(probe, sampling)` returns, without building them: a caller checks
 * what a plan will cost (`fps:1000` on a 3-hour video is 675,000 clips of 16) before it
 * allocates anything for it.
 */
export function clipCount(probe: ProbeResult, sampling: Sampling): number {
  const tl = timelineOf(probe);
  const s = validateSampling(sampling);
  if (s.kind === 'uniform') return 1;
  if (s.kind === 'fps') {
    const stride = s.stride ?? s.frames;
    const total = fpsSamples(tl, s.fps);
    let c = 1;
    // Clip c starts at sample c * stride, unless it is past the end or the previous clip reached the end.
    while (c * stride < total && (c - 1) * stride + s.frames < total) c++;
    return c;
  }
  let k = 1;
  // Window k starts at k * stride, unless it is past the end or the previous window reached the end.
  while (tl.t0 + k * s.stride < tl.end - EPS / tl.fps && tl.t0 + (k - 1) * s.stride + s.length < tl.end) k++;
  return k;
}

/** Samples at `fps` per second from the first frame inside the video (at least one). */
function fpsSamples(tl: Timeline, fps: number): number {
  return Math.max(1, Math.ceil((tl.end - tl.t0) * fps - EPS));
}

/**
 * The clips of a video under `sampling`. Pure; throws a TypeError for bad arguments, and an
 * `IngestError` with code `OUT_OF_RANGE` for a span (`start`, `end`) outside the video.
 */
export function planClips(probe: ProbeResult, sampling: Sampling): ClipPlan[] {
  const tl = timelineOf(probe);
  const s = validateSampling(sampling);
  const T = s.frames;
  if (s.kind === 'uniform') {
    const a = s.start !== undefined ? Math.max(tl.t0, s.start) : tl.t0;
    const b = s.end !== undefined ? Math.min(tl.end, s.end) : tl.end;
    if (!(b > a)) {
      // A fact about this video (a manifest row's span), not a bad option: its record says so.
      const span = `${s.start ?? clean(tl.t0)}-${s.end ?? clean(tl.end)} s`;
      throw new IngestError('OUT_OF_RANGE', probe.path, `${probe.path}: the span ${span} lies outside the video (${clean(tl.t0)}-${clean(tl.end)} s)`);
    }
    const rand = s.seed !== undefined ? seedrandom(String(s.seed)) : undefined;
    const { timestamps, mask } = placeFrames(tl, a, b, T, rand);
    return [{ index: 0, start: clean(a), end: clean(b), timestamps, mask }];
  }
  const count = clipCount(probe, s);
  if (s.kind === 'fps') {
    const stride = s.stride ?? T;
    const step = 1 / s.fps;
    // Sample times t0 + j / fps inside the video.
    const total = fpsSamples(tl, s.fps);
    const at = (j: number): number => clean(tl.t0 + j * step);
    return Array.from({ length: count }, (_, c): ClipPlan => {
      const from = c * stride;
      const real = Math.min(T, total - from);
      const timestamps = Array.from({ length: T }, (_, k) => at(from + Math.min(k, real - 1)));
      const mask = Array.from({ length: T }, (_, k) => k < real);
      return { index: c, start: at(from), end: clean(Math.min(tl.end, tl.t0 + (from + real) * step)), timestamps, mask };
    });
  }
  // window
  return Array.from({ length: count }, (_, k): ClipPlan => {
    const a = tl.t0 + k * s.stride;
    const b = Math.min(tl.end, a + s.length);
    const { timestamps, mask } = placeFrames(tl, a, b, T);
    return { index: k, start: clean(a), end: clean(b), timestamps, mask };
  });
}
