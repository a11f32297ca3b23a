/**
 * Temporal heads over frame embeddings [B, T, D], one file each under `heads/` and listed in
 * `heads/registry.ts` (`lstm`, the default, `gru`, `bilstm` and the order-blind `mean`
 * baseline); `clip` mode gives [B, C] (many-to-one), `frame` mode gives [B, T, C]
 * (many-to-many: returnSequences + TimeDistributed(Dense)). Padded frames arrive as all-zero
 * embeddings and are masked by the first layer, in both modes.
 */
import { tf } from '../tfjs/tf.js';
import { invalid, isPlainObject, LIMITS, numberInRange, oneOf, positiveInteger } from '../validate.js';
import * as layers from './layers.js';
import { TimeDistributed } from '../tfjs/time-distributed.js';
import { HEADS } from './heads/registry.js';
import { HEAD_MODES } from './model-info.js';
import type { HeadConfig, HeadOptions } from './types.js';

export { HEAD_MODES };

/** Fills defaults and validates (field names prefixed by `field`). */
export function resolveHeadConfig(options: HeadOptions = {}, field = 'head'): HeadConfig {
  if (!isPlainObject(options)) throw invalid(field, 'a head options object', options);
  return {
    type: options.type === undefined ? HEADS.default : HEADS.check(`${field}.type`, options.type),
    mode: options.mode === undefined ? 'clip' : oneOf(`${field}.mode`, options.mode, HEAD_MODES),
    units: options.units === undefined ? 256 : positiveInteger(`${field}.units`, options.units, LIMITS.units),
    dropout:
      options.dropout === undefined
        ? 0.2
        : numberInRange(`${field}.dropout`, options.dropout, 0, 1, { exclusiveMax: true }),
  };
}

/**
 * Builds an untrained head: input [B, T, D] (any T) -> softmax [B, C] or [B, T, C].
 * `seed` fixes the initial weights.
 */
export function buildHead(
  config: HeadConfig,
  dims: { dim: number; classes: number },
  seed = 0,
): tf.LayersModel {
  const sequences = config.mode === 'frame';
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 16 + k });
  const input = tf.input({ shape: [null, dims.dim], name: 'fw_embeddings' });
  // Padded frames are all-zero embeddings: mask them so recurrences and the mean skip them.
  let x = tf.layers.masking({ maskValue: 0, name: 'fw_mask' }).apply(input) as tf.SymbolicTensor;
  const recurrent = (cell: 'lstm' | 'gru', name: string) => {
    const args = {
      units: config.units,
      returnSequences: sequences,
      kernelInitializer: init(1),
      // Glorot rather than tfjs's orthogonal default, which warns on the console for big matrices.
      recurrentInitializer: init(2),
      name,
    };
    return cell === 'lstm' ? tf.layers.lstm(args) : tf.layers.gru(args);
  };
  x = HEADS.get(config.type).build(x, { tf, sequences, units: config.units, recurrent, layers });
  const dense = tf.layers.dense({
    units: dims.classes,
    activation: 'softmax',
    kernelInitializer: init(3),
    name: 'fw_dense',
  });
  const output = (sequences ? new TimeDistributed({ layer: dense, name: 'fw_frames' }) : dense).apply(
    x,
  ) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: `framewise_head_${config.type}_${config.mode}` });
}

/**
 * Packs embeddings [B, T, D] into a tensor, zeroing the frames whose mask is false so the
 * head's masking skips them. Synchronous; call inside `tf.tidy`.
 */
export function embeddingsTensor(
  embeddings: Float32Array,
  shape: readonly [number, number, number],
  masks?: ArrayLike<boolean | number>,
): tf.Tensor3D {
  const [b, t, d] = shape;
  if (!masks) return tf.tensor3d(embeddings, [b, t, d]);
  const data = new Float32Array(embeddings);
  for (let i = 0; i < b * t; i++) if (!masks[i]) data.fill(0, i * d, (i + 1) * d);
  return tf.tensor3d(data, [b, t, d]);
}
