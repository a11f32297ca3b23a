import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/tfjs/backend.js';
import { loadBackbone, normalizeFrames, type LoadedBackbone } from '../../src/tfjs/registry.js';
import { layersModelFromArtifacts, modelToArtifacts } from '../../src/tfjs/artifacts.js';
import { TimeMask } from '../../src/model/layers.js';
import { TimeDistributed } from '../../src/tfjs/time-distributed.js';
import { maxAbsDiff, testCacheDir } from '../model/helpers.js';

/** Dense 3 -> 2 with kernel [[1, 2], [3, 4], [5, 6]] and bias [0.5, -1], worked out by hand. */
function handDense(name?: string): tf.layers.Layer {
  const dense = tf.layers.dense({ units: 2, name });
  dense.build([null, 3]);
  dense.setWeights([
    tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]),
    tf.tensor1d([0.5, -1]),
  ]);
  return dense;
}

beforeAll(async () => {
  await selectBackend('auto');
});

describe('TimeDistributed shapes', () => {
  it('maps [B, T, ...] to [B, T, ...inner output] symbolically', () => {
    const input = tf.input({ shape: [null, 3] });
    const out = new TimeDistributed({ layer: tf.layers.dense({ units: 5 }) }).apply(
      input,
    ) as tf.SymbolicTensor;
    expect(out.shape).toEqual([null, null, 5]);
    const fixed = tf.input({ shape: [7, 4, 4, 2] });
    const conv = new TimeDistributed({ layer: tf.layers.conv2d({ filters: 6, kernelSize: 3 }) }).apply(
      fixed,
    ) as tf.SymbolicTensor;
    expect(conv.shape).toEqual([null, 7, 2, 2, 6]);
  });

  it('gives [B, T, units] on real tensors for any B and T', () => {
    const td = new TimeDistributed({ layer: handDense() });
    for (const [b, t] of [
      [1, 1],
      [2, 5],
      [3, 16],
    ]) {
      const y = td.apply(tf.zeros([b, t, 3])) as tf.Tensor;
      expect(y.shape).toEqual([b, t, 2]);
      y.dispose();
    }
  });

  it('rejects an input without a time axis', () => {
    const td = new TimeDistributed({ layer: tf.layers.dense({ units: 2 }) });
    expect(() => td.apply(tf.input({ shape: [3] }))).toThrow(/rank >= 3/);
  });
});

describe('TimeDistributed values', () => {
  it('applies a hand-set Dense to every step: x W + b worked out on paper', () => {
    const td = new TimeDistributed({ layer: handDense() });
    // Step 1: [1, 0, 0] -> [1.5, 1]; step 2: [0, 1, 1] -> [8.5, 9].
    const y = td.apply(
      tf.tensor3d([
        [
          [1, 0, 0],
          [0, 1, 1],
        ],
      ]),
    ) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual([1.5, 1, 8.5, 9]);
    y.dispose();
  });

  it('equals tf.layers.timeDistributed within 1e-5 on a tiny hand-set layer', () => {
    const dense = handDense();
    const x = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 1);
    const ours = new TimeDistributed({ layer: dense }).apply(x) as tf.Tensor;
    const theirs = tf.layers.timeDistributed({ layer: dense }).apply(x) as tf.Tensor;
    expect(maxAbsDiff(ours.dataSync(), theirs.dataSync())).toBeLessThan(1e-5);
    tf.dispose([x, ours, theirs]);
  });

  it('shares one set of weights across time steps', () => {
    const dense = handDense();
    const td = new TimeDistributed({ layer: dense });
    const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [null, 3] }), td] });
    expect(model.weights.length).toBe(2);
    expect(model.countParams()).toBe(3 * 2 + 2);
    expect(td.trainableWeights.map((w) => w.name)).toEqual(dense.trainableWeights.map((w) => w.name));
  });

  it('serialises: a model containing it saves and reloads with the same outputs', async () => {
    // Built inside the wrapper (as in a head), so its weights are named in the wrapper's scope.
    const inner = tf.layers.dense({ units: 2, name: 'inner_dense' });
    const input = tf.input({ shape: [null, 3] });
    const out = new TimeDistributed({ layer: inner }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    inner.setWeights([
      tf.tensor2d([
        [1, 2],
        [3, 4],
        [5, 6],
      ]),
      tf.tensor1d([0.5, -1]),
    ]);
    const artifacts = await modelToArtifacts(model);
    expect(JSON.stringify(artifacts.modelTopology)).toContain('FramewiseTimeDistributed');
    const reloaded = await layersModelFromArtifacts(artifacts);
    const x = tf.randomNormal([2, 3, 3], 0, 1, 'float32', 2);
    const a = model.predict(x) as tf.Tensor;
    const b = reloaded.predict(x) as tf.Tensor;
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    tf.dispose([x, a, b]);
    model.dispose();
    reloaded.dispose();
  });

  it('passes the [B, T] mask on to the recurrent layer: padding 5 -> 8 frames changes nothing', () => {
    const input = tf.input({ shape: [null, 3] });
    let x = tf.layers.masking({ maskValue: 0 }).apply(input) as tf.SymbolicTensor;
    x = new TimeDistributed({
      layer: tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    }).apply(x) as tf.SymbolicTensor;
    x = tf.layers
      .lstm({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })
      .apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: x });
    const five = tf.randomUniform([1, 5, 3], 0.1, 1, 'float32', 3);
    const padded = tf.concat([five, tf.zeros([1, 3, 3])], 1);
    const a = model.predict(five) as tf.Tensor;
    const b = model.predict(padded) as tf.Tensor;
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(1e-6);
    // Without masking the padded steps would move the state: the test can fail.
    const unmaskedIn = tf.input({ shape: [null, 3] });
    const unmasked = tf.model({
      inputs: unmaskedIn,
      outputs: model.layers[3].apply(model.layers[2].apply(unmaskedIn)) as tf.SymbolicTensor,
    });
    const c = unmasked.predict(padded) as tf.Tensor;
    expect(maxAbsDiff(a.dataSync(), c.dataSync())).toBeGreaterThan(1e-4);
    tf.dispose([five, padded, a, b, c]);
  });

  it('TimeMask gives a [B, T] mask from all-zero frames of any rank', () => {
    const frames = tf.concat([tf.ones([1, 2, 2, 2, 3]), tf.zeros([1, 1, 2, 2, 3])], 1); // [1, 3, 2, 2, 3]
    const mask = new TimeMask().computeMask(frames);
    expect(mask.shape).toEqual([1, 3]);
    expect(Array.from(mask.dataSync())).toEqual([1, 1, 0]);
    tf.dispose([frames, mask]);
  });

  it('leaves tf.memory().numTensors unchanged after applying twice', () => {
    const td = new TimeDistributed({ layer: handDense() });
    const x = tf.ones([2, 3, 3]);
    (td.apply(x) as tf.Tensor).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) (td.apply(x) as tf.Tensor).dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('TimeDistributed over the real backbone', () => {
  let backbone: LoadedBackbone;
  let frames: tf.Tensor; // [1, 3, 224, 224, 3] normalised

  beforeAll(async () => {
    backbone = await loadBackbone('mobilenet_v2', { cacheDir: testCacheDir() });
    frames = tf.tidy(() =>
      normalizeFrames(tf.floor(tf.randomUniform([1, 3, 224, 224, 3], 0, 256, 'float32', 9)), '0..1'),
    );
  });

  afterAll(() => {
    frames?.dispose();
    backbone?.dispose();
  });

  it('equals tf.layers.timeDistributed within 1e-5', () => {
    const ours = new TimeDistributed({ layer: backbone.layersModel! }).apply(frames) as tf.Tensor;
    const theirs = tf.layers.timeDistributed({ layer: backbone.layersModel! }).apply(frames) as tf.Tensor;
    expect(ours.shape).toEqual([1, 3, 1280]);
    expect(maxAbsDiff(ours.dataSync(), theirs.dataSync())).toBeLessThan(1e-5);
    tf.dispose([ours, theirs]);
  });

  it("gives each frame the backbone's embedding of that frame alone", () => {
    const ours = new TimeDistributed({ layer: backbone.layersModel! }).apply(frames) as tf.Tensor;
    for (let t = 0; t < 3; t++) {
      const alone = tf.tidy(() =>
        backbone.embed(tf.reshape(tf.slice(frames, [0, t], [1, 1]), [1, 224, 224, 3]) as tf.Tensor4D),
      );
      const step = tf.tidy(() => tf.reshape(tf.slice(ours, [0, t], [1, 1]), [1, 1280]));
      expect(maxAbsDiff(alone.dataSync(), step.dataSync())).toBeLessThan(1e-5);
      tf.dispose([alone, step]);
    }
    ours.dispose();
  });

  it('holds one set of backbone weights', () => {
    const td = new TimeDistributed({ layer: backbone.layersModel! });
    expect(td.weights.length).toBe(backbone.layersModel!.weights.length);
    const input = tf.input({ shape: [4, 224, 224, 3] });
    const model = tf.model({ inputs: input, outputs: td.apply(input) as tf.SymbolicTensor });
    expect(model.countParams()).toBe(backbone.layersModel!.countParams());
  });
});
