/** `lstm`: one LSTM over the frames. */
import type { HeadEntry } from './entry.js';

export const lstm: HeadEntry = {
  help: 'an LSTM over the frames',
  build: (x, ctx) => ctx.recurrent('lstm', 'fw_lstm').apply(x) as typeof x,
  fastStep: (model) => ({ cell: 'lstm', directions: [model.getLayer('fw_lstm')] }),
};
