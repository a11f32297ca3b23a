/**
 * `uniform`: T frames at the centres of T equal parts of the video (or of its span). With
 * `seed` (training), each frame moves to a reproducible random point inside its part instead
 * of the centre.
 */
import seedrandom from 'seedrandom';
import { LIMITS, nonNegativeInteger } from '../../validate.js';
import { clean, placeFrames, type Sampler } from './timeline.js';

export interface UniformSampling {
  frames: number;
  /** Jitter each frame inside its part, reproducibly (training). @default none: the centres */
  seed?: number;
}

export const uniform: Sampler<UniformSampling> = {
  form: 'uniform',
  help: "one clip of T frames over the whole video (or the manifest row's span)",
  parse: (args, frames) => (args === undefined ? { frames } : undefined),
  validate(value, field, frames) {
    const out: UniformSampling = { frames };
    if (value.seed !== undefined) out.seed = nonNegativeInteger(`${field}.seed`, value.seed, LIMITS.seed);
    return out;
  },
  plan(tl, s) {
    const rand = s.seed !== undefined ? seedrandom(String(s.seed)) : undefined;
    const { timestamps, mask } = placeFrames(tl, tl.from, tl.to, s.frames, rand);
    return [{ index: 0, start: clean(tl.from), end: clean(tl.to), timestamps, mask }];
  },
  count: () => 1,
  subsets: true,
};
