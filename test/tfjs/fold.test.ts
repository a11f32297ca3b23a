import { readdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/tfjs/backend.js';
import { foldBatchNorm } from '../../src/tfjs/fold.js';
import { fixture } from '../fixtures.js';
import { maxAbsDiff, realFrames } from '../model/helpers.js';

const S = 224;

describe('foldBatchNorm() on hand-set tiny models', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  /** x [1, 3, 3, 2] with distinct values. */
  const x = (): tf.Tensor4D =>
    tf.tensor4d(
      Array.from({ length: 18 }, (_, i) => (i - 7) / 4),
      [1, 3, 3, 2],
    );

  it('folds Conv2D (no bias) + BatchNormalization into one conv with the numbers worked out by hand', async () => {
    const input = tf.input({ shape: [3, 3, 2] });
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 1, useBias: false, name: 'c' });
    const bn = tf.layers.batchNormalization({ epsilon: 0.25, name: 'bn' });
    const model = tf.model({
      inputs: input,
      outputs: tf.layers.reLU({ name: 'r' }).apply(bn.apply(conv.apply(input))) as tf.SymbolicTensor,
    });
    // 1x1 kernel [1, 1, in=2, out=2]: out0 = 1*in0 + 2*in1, out1 = -1*in0 + 0.5*in1.
    conv.setWeights([tf.tensor4d([1, -1, 2, 0.5], [1, 1, 2, 2])]);
    // gamma, beta, mean, var; var + eps = 4 and 1 -> s = gamma / 2 and gamma / 1.
    bn.setWeights([
      tf.tensor1d([2, 3]),
      tf.tensor1d([0.5, -1]),
      tf.tensor1d([1, -2]),
      tf.tensor1d([3.75, 0.75]),
    ]);

    const result = await foldBatchNorm(model);
    expect(result.folded).toEqual([{ conv: 'c', bn: 'bn' }]);
    expect(result.model.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Conv2D', 'ReLU']);
    const [kernel, bias] = result.model.getLayer('c').getWeights();
    // s = [2/2, 3/1] = [1, 3]: kernel columns scaled by s; bias = beta - mean * s = [0.5 - 1, -1 + 6].
    expect(Array.from(kernel.dataSync())).toEqual([1, -3, 2, 1.5]);
    expect(Array.from(bias.dataSync())).toEqual([-0.5, 5]);
    const want = (model.predict(x()) as tf.Tensor).dataSync();
    const got = (result.model.predict(x()) as tf.Tensor).dataSync();
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-6);
    result.model.dispose();
    model.dispose();
  });

  it('folds DepthwiseConv2D (multiplier 2, with bias) + BatchNormalization per input channel x multiplier', async () => {
    const input = tf.input({ shape: [3, 3, 2] });
    const dw = tf.layers.depthwiseConv2d({ kernelSize: 1, depthMultiplier: 2, useBias: true, name: 'dw' });
    const bn = tf.layers.batchNormalization({ epsilon: 0, name: 'bn' });
    const model = tf.model({ inputs: input, outputs: bn.apply(dw.apply(input)) as tf.SymbolicTensor });
    // kernel [1, 1, in=2, mult=2]; output channel c*2+m.
    dw.setWeights([tf.tensor4d([1, 2, 3, 4], [1, 1, 2, 2]), tf.tensor1d([0.5, 0, -1, 2])]);
    // var = [4, 1, 0.25, 16] -> sqrt = [2, 1, 0.5, 4]; gamma = [2, 1, 1, 8] -> s = [1, 1, 2, 2].
    bn.setWeights([
      tf.tensor1d([2, 1, 1, 8]),
      tf.tensor1d([0, 1, 0, 0]),
      tf.tensor1d([0.5, 1, 1, 0]),
      tf.tensor1d([4, 1, 0.25, 16]),
    ]);

    const result = await foldBatchNorm(model);
    const [kernel, bias] = result.model.getLayer('dw').getWeights();
    expect(kernel.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(kernel.dataSync())).toEqual([1, 2, 6, 8]);
    // beta + (bias - mean) * s = [0 + 0, 1 + (-1), 0 + (-2)*2, 0 + 2*2]
    expect(Array.from(bias.dataSync())).toEqual([0, 0, -4, 4]);
    const want = (model.predict(x()) as tf.Tensor).dataSync();
    const got = (result.model.predict(x()) as tf.Tensor).dataSync();
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    result.model.dispose();
    model.dispose();
  });

  it('keeps a BatchNormalization whose conv output is also read elsewhere, and one after a non-conv layer', async () => {
    const input = tf.input({ shape: [3, 3, 2] });
    const c = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c' }).apply(input) as tf.SymbolicTensor;
    const bn1 = tf.layers.batchNormalization({ name: 'bn1' }).apply(c) as tf.SymbolicTensor;
    const sum = tf.layers.add({ name: 'sum' }).apply([c, bn1]) as tf.SymbolicTensor; // c read twice
    const bn2 = tf.layers.batchNormalization({ name: 'bn2' }).apply(sum) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: bn2 });
    const result = await foldBatchNorm(model);
    expect(result.folded).toEqual([]);
    expect(result.kept.map((k) => k.bn)).toEqual(['bn1', 'bn2']);
    expect(result.kept[0].reason).toMatch(/also read elsewhere/);
    expect(result.kept[1].reason).toMatch(/not Conv2D/);
    result.model.dispose();
    model.dispose();
  });

  it('does not leak tensors and rejects an aborted signal', async () => {
    const input = tf.input({ shape: [3, 3, 2] });
    const model = tf.model({
      inputs: input,
      outputs: tf.layers
        .batchNormalization({})
        .apply(tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(input)) as tf.SymbolicTensor,
    });
    (await foldBatchNorm(model)).model.dispose(); // warm-up: tfjs caches a few scalars on first use
    const before = tf.memory().numTensors;
    (await foldBatchNorm(model)).model.dispose();
    (await foldBatchNorm(model)).model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(foldBatchNorm(model, { signal: controller.signal })).rejects.toThrow('stop');
    model.dispose();
  });
});

describe('foldBatchNorm() on the MobileNetV2 backbone', () => {
  let backbone: tf.LayersModel;
  let folded: Awaited<ReturnType<typeof foldBatchNorm>>;

  beforeAll(async () => {
    await selectBackend('wasm');
    const { load } = await import('nsfwjs');
    const full = (await load('MobileNetV2')).model as tf.LayersModel;
    backbone = tf.model({ inputs: full.inputs, outputs: full.getLayer('flatten_1').output });
    folded = await foldBatchNorm(backbone);
  });

  afterAll(() => {
    folded?.model.dispose();
  });

  it('folds all 52 BatchNormalization layers and removes them from the graph', () => {
    expect(folded.folded).toHaveLength(52);
    expect(folded.kept).toEqual([]);
    expect(folded.model.layers.filter((l) => l.getClassName() === 'BatchNormalization')).toHaveLength(0);
    expect(folded.model.layers).toHaveLength(backbone.layers.length - 52);
    expect(folded.model.outputs[0].shape).toEqual([null, 1280]);
    expect(folded.maxAbsDiff).toBeLessThan(1e-4);
  });

  it('gives features within 1e-4 of the unfolded backbone on real frames', () => {
    const videos = readdirSync(fixture('arrow/forward')).sort().slice(0, 3);
    const frames = videos.map((v) => realFrames(`arrow/forward/${v}`, 2));
    const n = frames.length * 2;
    const data = new Uint8Array(n * S * S * 3);
    frames.forEach((f, i) => data.set(f, i * f.length));
    const [want, got] = tf.tidy(() => {
      const input = tf.tensor4d(data, [n, S, S, 3], 'int32').toFloat().div(255); // [n, S, S, 3] in [0, 1]
      return [
        (backbone.predict(input) as tf.Tensor).dataSync(),
        (folded.model.predict(input) as tf.Tensor).dataSync(),
      ];
    });
    expect(want.length).toBe(n * 1280);
    // Real features, not a degenerate all-zero output.
    expect(Math.max(...want)).toBeGreaterThan(0.1);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });
});
