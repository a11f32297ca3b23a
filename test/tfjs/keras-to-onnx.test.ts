import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { convertKerasToOnnx } from '../../src/tfjs/keras-to-onnx.js';
import { modelToArtifacts } from '../../src/tfjs/artifacts.js';
import { foldBatchNorm } from '../../src/tfjs/fold.js';
import { selectBackend } from '../../src/tfjs/backend.js';
import { normalizeFrames } from '../../src/tfjs/registry.js';
import type { Normalization } from '../../src/embedding/backbone-spec.js';
import { maxAbsDiff, randomFrames, seedWeights } from '../model/helpers.js';

/** Seeded weights; variances positive, so every BatchNormalization is a real affine map. */
const setSeededWeights = (model: tf.LayersModel, seed: number): void =>
  seedWeights(model, seed, (rand, name) => (name.includes('moving_variance') ? 0.3 + rand() : rand() - 0.5));

/**
 * Every layer mapping in one graph, at an odd size (15) so that TF `same` at stride 2 needs
 * the asymmetric pad: conv+BN, ReLU6, depthwise with multiplier 2 + BN, zero padding, Add,
 * a BN that cannot fold (after Add), Concatenate, max and average pooling with `same`,
 * Activation, global pooling, Dense. Converted as it is (every BN a Mul + Add) and as the
 * engines convert it, after `foldBatchNorm` (only the BN after Add left).
 */
function everyLayerModel(): tf.LayersModel {
  const input = tf.input({ shape: [15, 15, 3], name: 'img' });
  let x = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', useBias: true, name: 'c1' })
    .apply(input) as tf.SymbolicTensor; // [8, 8, 4]
  x = tf.layers.batchNormalization({ name: 'c1_bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6, name: 'c1_relu' }).apply(x) as tf.SymbolicTensor;
  let d = tf.layers
    .depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: false, name: 'dw' })
    .apply(x) as tf.SymbolicTensor; // [8, 8, 8]
  d = tf.layers.batchNormalization({ name: 'dw_bn' }).apply(d) as tf.SymbolicTensor;
  let p = tf.layers
    .zeroPadding2d({
      padding: [
        [0, 1],
        [1, 0],
      ],
      name: 'pad',
    })
    .apply(x) as tf.SymbolicTensor; // [9, 9, 4]
  p = tf.layers
    .conv2d({ filters: 8, kernelSize: 2, strides: 1, padding: 'valid', activation: 'relu', name: 'c2' })
    .apply(p) as tf.SymbolicTensor; // [8, 8, 8]
  let s = tf.layers.add({ name: 'sum' }).apply([d, p]) as tf.SymbolicTensor;
  s = tf.layers.batchNormalization({ name: 'sum_bn' }).apply(s) as tf.SymbolicTensor; // not after a conv: Mul + Add
  const m = tf.layers
    .maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'maxp' })
    .apply(s) as tf.SymbolicTensor; // [4, 4, 8]
  let a = tf.layers
    .conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', name: 'c3' })
    .apply(s) as tf.SymbolicTensor; // [4, 4, 3]
  a = tf.layers
    .averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: 'avgp' })
    .apply(a) as tf.SymbolicTensor;
  let c = tf.layers.concatenate({ axis: -1, name: 'cat' }).apply([m, a]) as tf.SymbolicTensor; // [4, 4, 11]
  c = tf.layers.activation({ activation: 'sigmoid', name: 'sig' }).apply(c) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(c) as tf.SymbolicTensor; // [11]
  const out = tf.layers.dense({ units: 5, activation: 'tanh', name: 'fc' }).apply(g) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'every_layer' });
}

/** A Flatten over H, W > 1: Keras flattens in H, W, C order, which NCHW must undo first. */
function flattenModel(): tf.LayersModel {
  const input = tf.input({ shape: [7, 7, 3] });
  let x = tf.layers
    .conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'valid', name: 'c' })
    .apply(input) as tf.SymbolicTensor; // [3, 3, 2]
  x = tf.layers.flatten({ name: 'flat' }).apply(x) as tf.SymbolicTensor; // [18]
  return tf.model({ inputs: input, outputs: x });
}

async function onnxRun(bytes: Uint8Array, frames: Uint8Array, S: number, n: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const out = await session.run({ frames: new ort.Tensor('uint8', frames, [n, S, S, 3]) });
    return out.embedding.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('convertKerasToOnnx()', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it.each<[string, () => tf.LayersModel, number, Normalization, boolean]>([
    [
      'every mapped layer, odd size, imagenet mean/std',
      everyLayerModel,
      15,
      { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      false,
    ],
    [
      'every mapped layer, BatchNorm folded first',
      everyLayerModel,
      15,
      { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      true,
    ],
    ['Flatten over 3x3, -1..1', flattenModel, 7, '-1..1', false],
  ])('gives the tfjs outputs from uint8 frames: %s', async (_, build, S, normalize, fold) => {
    const model = build();
    try {
      setSeededWeights(model, 7);
      const n = 3;
      const frames = randomFrames(n, S, 11);
      let source = model;
      if (fold) {
        const result = await foldBatchNorm(model, { verifyTolerance: 0 });
        expect(result.folded.map((f) => f.bn)).toEqual(['c1_bn', 'dw_bn']);
        source = result.model;
      }
      const bytes = await convertKerasToOnnx(await modelToArtifacts(source), { inputSize: S, normalize });
      if (source !== model) source.dispose();
      const want = tf.tidy(() =>
        (
          model.predict(normalizeFrames(tf.tensor4d(frames, [n, S, S, 3], 'int32'), normalize)) as tf.Tensor
        ).dataSync(),
      );
      const got = await onnxRun(bytes, frames, S, n);
      expect(got.length).toBe(want.length);
      // Not a degenerate output: the values vary across frames.
      expect(new Set(Array.from(want, (v) => v.toFixed(3))).size).toBeGreaterThan(want.length / 2);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  it('throws a ModelError naming a layer it cannot map', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const x = tf.layers.globalAveragePooling2d({}).apply(input) as tf.SymbolicTensor;
    const y = tf.layers.layerNormalization({ name: 'ln' }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: y });
    try {
      const artifacts = await modelToArtifacts(model);
      await expect(convertKerasToOnnx(artifacts, { inputSize: 8, normalize: '0..1' })).rejects.toThrow(
        ModelError,
      );
      await expect(convertKerasToOnnx(artifacts, { inputSize: 8, normalize: '0..1' })).rejects.toThrow(
        /layer 'ln' \(LayerNormalization\) has no ONNX mapping/,
      );
    } finally {
      model.dispose();
    }
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'a conv activation it does not know',
      { activation: 'gelu' },
      /layer 'c' \(Conv2D\) uses activation 'gelu'/,
    ],
    ['causal padding', { padding: 'causal' }, /layer 'c' \(Conv2D\) uses padding 'causal'/],
  ])('throws a ModelError for a setting it cannot map: %s', async (_, change, message) => {
    const input = tf.input({ shape: [8, 8, 3] });
    const x = tf.layers.conv2d({ filters: 2, kernelSize: 3, name: 'c' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.flatten({}).apply(x) as tf.SymbolicTensor });
    try {
      const artifacts = await modelToArtifacts(model);
      // Edit the topology as a file written elsewhere would carry it.
      const topology = JSON.parse(JSON.stringify(artifacts.modelTopology));
      Object.assign(topology.config.layers.find((l: { name: string }) => l.name === 'c').config, change);
      await expect(
        convertKerasToOnnx({ ...artifacts, modelTopology: topology } as never, {
          inputSize: 8,
          normalize: '0..1',
        }),
      ).rejects.toThrow(message);
    } finally {
      model.dispose();
    }
  });

  it('rejects an input size the model does not take', async () => {
    const model = flattenModel();
    try {
      await expect(convertKerasToOnnx(null as never, { inputSize: 7, normalize: '0..1' })).rejects.toThrow(
        /not a Keras model config/,
      );
      const artifacts = await modelToArtifacts(model);
      await expect(convertKerasToOnnx(artifacts, { inputSize: 9, normalize: '0..1' })).rejects.toThrow(
        /input shape \[null,7,7,3\], not 9x9/,
      );
    } finally {
      model.dispose();
    }
  });
});
