/** `mean`: the order-blind baseline, no recurrence. */
import type { HeadEntry } from './entry.js';

export const mean: HeadEntry = {
  help: 'the mean over real frames, blind to order: a baseline',
  // Clip mode: the mean over real frames. Frame mode: each frame alone.
  build: (x, ctx) =>
    ctx.sequences ? x : (new ctx.layers.MaskedMean({ name: 'fw_mean' }).apply(x) as typeof x),
  // Nothing recurrent to hand-write: the Dense tail trains quickly through autodiff.
  fastStep: null,
};
