/** `bilstm`: an LSTM each way over the frames, outputs concatenated (2 x units wide). */
import type { tf } from '../../tfjs/tf.js';
import type { HeadEntry } from './entry.js';

export const bilstm: HeadEntry = {
  help: 'an LSTM each way, concatenated',
  build: (x, ctx) =>
    ctx.tf.layers
      .bidirectional({
        layer: ctx.recurrent('lstm', 'fw_lstm') as any,
        mergeMode: 'concat',
        name: 'fw_bilstm',
      })
      .apply(x) as typeof x,
  fastStep: (model) => {
    const bi = model.getLayer('fw_bilstm') as unknown as {
      forwardLayer: tf.layers.Layer;
      backwardLayer: tf.layers.Layer;
    };
    return { cell: 'lstm', directions: [bi.forwardLayer, bi.backwardLayer] };
  },
};
