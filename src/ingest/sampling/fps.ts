/**
 * `fps`: frames at `fps` per second from the first frame (or the span's start), cut into
 * clips of T frames; clip c starts at frame c * stride (default stride T: clips do not overlap).
 */
import { LIMITS, positiveInteger, positiveNumber } from '../../validate.js';
import { clean, DECIMAL, EPS, type Sampler, type Timeline } from './timeline.js';
import type { ClipPlan } from '../types.js';

export interface FpsSampling {
  fps: number;
  frames: number;
  /** Frames from one clip's start to the next's. @default frames (no overlap) */
  stride?: number;
}

export const fps: Sampler<FpsSampling> = {
  form: 'fps:<n>[/<stride>]',
  help: 'frames at n per second, cut into clips of T (a new clip every stride frames)',
  parse(args, frames) {
    const m = args === undefined ? null : new RegExp(`^${DECIMAL}(?:/(\\d+))?$`).exec(args);
    if (!m || !(Number(m[1]) > 0) || (m[2] !== undefined && !(Number(m[2]) > 0))) return undefined;
    return m[2] === undefined
      ? { fps: Number(m[1]), frames }
      : { fps: Number(m[1]), frames, stride: Number(m[2]) };
  },
  validate(value, field, frames) {
    const out: FpsSampling = { fps: positiveNumber(`${field}.fps`, value.fps, LIMITS.fps), frames };
    if (value.stride !== undefined) out.stride = positiveInteger(`${field}.stride`, value.stride);
    return out;
  },
  plan(tl, s) {
    const T = s.frames;
    const stride = s.stride ?? T;
    const step = 1 / s.fps;
    const total = samples(tl, s.fps);
    const at = (j: number): number => clean(tl.from + j * step);
    return Array.from({ length: fps.count(tl, s) }, (_, c): ClipPlan => {
      const from = c * stride;
      const real = Math.min(T, total - from);
      const timestamps = Array.from({ length: T }, (_, k) => at(from + Math.min(k, real - 1)));
      const mask = Array.from({ length: T }, (_, k) => k < real);
      return {
        index: c,
        start: at(from),
        end: clean(Math.min(tl.to, tl.from + (from + real) * step)),
        timestamps,
        mask,
      };
    });
  },
  count(tl, s) {
    const stride = s.stride ?? s.frames;
    const total = samples(tl, s.fps);
    let c = 1;
    // Clip c starts at sample c * stride, unless it is past the end or the previous clip reached the end.
    while (c * stride < total && (c - 1) * stride + s.frames < total) c++;
    return c;
  },
};

/** Samples at `n` per second from the start of the part sampled, inside it (at least one). */
function samples(tl: Timeline, n: number): number {
  return Math.max(1, Math.ceil((tl.to - tl.from) * n - EPS));
}
