/** `gru`: one GRU over the frames. */
import type { HeadEntry } from './entry.js';

export const gru: HeadEntry = {
  help: 'a GRU over the frames',
  build: (x, ctx) => ctx.recurrent('gru', 'fw_gru').apply(x) as typeof x,
  fastStep: (model) => ({ cell: 'gru', directions: [model.getLayer('fw_gru')] }),
};
