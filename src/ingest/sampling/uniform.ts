/**
 * `uniform`: T frames at the centres of T equal parts of [start, end] (default: the whole
 * video). With `seed` (training), each frame moves to a reproducible random point inside its
 * part instead of the centre.
 */
import seedrandom from 'seedrandom';
import { IngestError } from '../../errors.js';
import { conflict, LIMITS, nonNegativeInteger, nonNegativeNumber, positiveNumber } from '../../validate.js';
import { clean, placeFrames, type Sampler } from './timeline.js';

export interface UniformSampling {
  frames: number;
  /** Seconds on the stream timeline. @default the first frame */
  start?: number;
  /** @default the end of the video */
  end?: number;
  /** Jitter each frame inside its part, reproducibly (training). @default none: the centres */
  seed?: number;
}

export const uniform: Sampler<UniformSampling> = {
  form: 'uniform',
  help: 'one clip of T frames over the whole video (or the manifest row\'s span)',
  parse: (args, frames) => (args === undefined ? { frames } : undefined),
  validate(value, field, frames) {
    const out: UniformSampling = { frames };
    if (value.start !== undefined) out.start = nonNegativeNumber(`${field}.start`, value.start);
    if (value.end !== undefined) out.end = positiveNumber(`${field}.end`, value.end);
    if (out.start !== undefined && out.end !== undefined && out.end <= out.start) {
      throw conflict(`${field}.start`, `${field}.end`, `the end (${out.end}) must come after the start (${out.start})`);
    }
    if (value.seed !== undefined) out.seed = nonNegativeInteger(`${field}.seed`, value.seed, LIMITS.seed);
    return out;
  },
  plan(tl, s) {
    const a = s.start !== undefined ? Math.max(tl.t0, s.start) : tl.t0;
    const b = s.end !== undefined ? Math.min(tl.end, s.end) : tl.end;
    if (!(b > a)) {
      // A fact about this video (a manifest row's span), not a bad option: its record says so.
      const span = `${s.start ?? clean(tl.t0)}-${s.end ?? clean(tl.end)} s`;
      throw new IngestError('OUT_OF_RANGE', tl.path, `${tl.path}: the span ${span} lies outside the video (${clean(tl.t0)}-${clean(tl.end)} s)`);
    }
    const rand = s.seed !== undefined ? seedrandom(String(s.seed)) : undefined;
    const { timestamps, mask } = placeFrames(tl, a, b, s.frames, rand);
    return [{ index: 0, start: clean(a), end: clean(b), timestamps, mask }];
  },
  count: () => 1,
  span: (s, span) => ({ ...s, ...(span.start !== undefined ? { start: span.start } : {}), ...(span.end !== undefined ? { end: span.end } : {}) }),
  subsets: true,
};
