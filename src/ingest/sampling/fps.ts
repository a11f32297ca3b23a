/**
 * `fps`: frames at `fps` per second from the first frame, cut into clips of T frames; clip c
 * starts at frame c * stride (default stride T: clips do not overlap).
 */
import { LIMITS, positiveInteger, positiveNumber } from '../../validate.js';
import { clean, DECIMAL, EPS, type Sampler } from './timeline.js';
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
    return m[2] === undefined ? { fps: Number(m[1]), frames } : { fps: Number(m[1]), frames, stride: Number(m[2]) };
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
    // Sample times t0 + j / fps inside the video.
    const total = Math.max(1, Math.ceil((tl.end - tl.t0) * s.fps - EPS));
    const at = (j: number): number => clean(tl.t0 + j * step);
    const clips: ClipPlan[] = [];
    for (let c = 0; ; c++) {
      const from = c * stride;
      if (from >= total) break;
      if (c > 0 && (c - 1) * stride + T >= total) break; // the previous clip already reached the end
      const real = Math.min(T, total - from);
      const timestamps = Array.from({ length: T }, (_, k) => at(from + Math.min(k, real - 1)));
      const mask = Array.from({ length: T }, (_, k) => k < real);
      clips.push({ index: c, start: at(from), end: clean(Math.min(tl.end, tl.t0 + (from + real) * step)), timestamps, mask });
    }
    return clips;
  },
};
