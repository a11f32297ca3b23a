/**
 * `window`: windows of `length` seconds every `stride` seconds from the start (or the span's
 * start); each window is one clip of T frames placed as `uniform` places them.
 */
import { positiveNumber } from '../../validate.js';
import { clean, DECIMAL, EPS, placeFrames, type Sampler } from './timeline.js';
import type { ClipPlan } from '../types.js';

export interface WindowSampling {
  /** Seconds per window. */
  length: number;
  /** Seconds from one window's start to the next's. */
  stride: number;
  frames: number;
}

export const window: Sampler<WindowSampling> = {
  form: 'window:<length>/<stride>',
  help: 'a clip of T frames per window of length seconds, every stride seconds',
  parse(args, frames) {
    const m = args === undefined ? null : new RegExp(`^${DECIMAL}/${DECIMAL}$`).exec(args);
    if (!m || !(Number(m[1]) > 0) || !(Number(m[2]) > 0)) return undefined;
    return { length: Number(m[1]), stride: Number(m[2]), frames };
  },
  validate: (value, field, frames) => ({
    length: positiveNumber(`${field}.length`, value.length),
    stride: positiveNumber(`${field}.stride`, value.stride),
    frames,
  }),
  plan(tl, s) {
    return Array.from({ length: window.count(tl, s) }, (_, k): ClipPlan => {
      const a = tl.from + k * s.stride;
      const b = Math.min(tl.to, a + s.length);
      const { timestamps, mask } = placeFrames(tl, a, b, s.frames);
      return { index: k, start: clean(a), end: clean(b), timestamps, mask };
    });
  },
  count(tl, s) {
    let k = 1;
    // Window k starts at k * stride, unless it is past the end or the previous window reached the end.
    while (tl.from + k * s.stride < tl.to - EPS / tl.fps && tl.from + (k - 1) * s.stride + s.length < tl.to)
      k++;
    return k;
  },
};
