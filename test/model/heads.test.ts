import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/tfjs/backend.js';
import { buildHead, embeddingsTensor, resolveHeadConfig } from '../../src/model/heads.js';
import type { HeadMode, HeadType } from '../../src/model/types.js';
import { maxAbsDiff, prng } from './helpers.js';

const D = 6;
const C = 3;
const TYPES: HeadType[] = ['lstm', 'gru', 'bilstm', 'mean'];

beforeAll(async () => {
  await selectBackend('auto');
});

function randomClip(t: number, seed: number): Float32Array {
  const rand = prng(seed);
  return Float32Array.from({ length: t * D }, () => 0.1 + rand());
}

describe('heads: shapes', () => {
  it.each(TYPES)("buildHead('%s') gives [B, C] in clip mode and [B, T, C] in frame mode", (type) => {
    for (const mode of ['clip', 'frame'] as HeadMode[]) {
      const model = buildHead(resolveHeadConfig({ type, mode, units: 4 }), { dim: D, classes: C }, 1);
      const y = tf.tidy(() => model.predict(tf.ones([2, 5, D])) as tf.Tensor);
      expect(y.shape).toEqual(mode === 'clip' ? [2, C] : [2, 5, C]);
      // Softmax: each row sums to 1.
      const sums = tf.tidy(() => tf.sum(y, -1).dataSync());
      for (const s of sums) expect(s).toBeCloseTo(1, 5);
      y.dispose();
      model.dispose();
    }
  });

  it('takes clips of any length T', () => {
    const model = buildHead(resolveHeadConfig({ units: 4 }), { dim: D, classes: C }, 1);
    expect(model.inputs[0].shape).toEqual([null, null, D]);
    for (const t of [1, 7, 16]) {
      const y = tf.tidy(() => model.predict(tf.ones([1, t, D])) as tf.Tensor);
      expect(y.shape).toEqual([1, C]);
      y.dispose();
    }
    model.dispose();
  });
});

describe('heads: masking of padded frames', () => {
  it.each(TYPES)(
    "'%s' clip mode: a clip padded from 5 to 16 frames gives the same output as the 5 frames",
    (type) => {
      const model = buildHead(resolveHeadConfig({ type, units: 4 }), { dim: D, classes: C }, 2);
      const five = randomClip(5, 3);
      const padded = new Float32Array(16 * D);
      padded.set(five);
      const mask = Array.from({ length: 16 }, (_, i) => i < 5);
      const a = tf.tidy(() => (model.predict(embeddingsTensor(five, [1, 5, D])) as tf.Tensor).dataSync());
      const b = tf.tidy(() =>
        (model.predict(embeddingsTensor(padded, [1, 16, D], mask)) as tf.Tensor).dataSync(),
      );
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
      // The padded frames hold data that the mask must hide: without the mask the output moves.
      const noise = new Float32Array(padded);
      noise.fill(0.7, 5 * D);
      const c = tf.tidy(() =>
        (model.predict(embeddingsTensor(noise, [1, 16, D], mask)) as tf.Tensor).dataSync(),
      );
      const d = tf.tidy(() => (model.predict(embeddingsTensor(noise, [1, 16, D])) as tf.Tensor).dataSync());
      expect(maxAbsDiff(a, c)).toBeLessThan(1e-5);
      expect(maxAbsDiff(a, d)).toBeGreaterThan(1e-5);
      model.dispose();
    },
  );

  it.each(TYPES)("'%s' frame mode: the real frames of a padded clip get the same outputs", (type) => {
    const model = buildHead(resolveHeadConfig({ type, mode: 'frame', units: 4 }), { dim: D, classes: C }, 2);
    const five = randomClip(5, 4);
    const padded = new Float32Array(16 * D);
    padded.set(five);
    padded.fill(0.5, 5 * D);
    const mask = Array.from({ length: 16 }, (_, i) => i < 5);
    const a = tf.tidy(() => (model.predict(embeddingsTensor(five, [1, 5, D])) as tf.Tensor).dataSync());
    const b = tf.tidy(() =>
      (model.predict(embeddingsTensor(padded, [1, 16, D], mask)) as tf.Tensor).dataSync(),
    );
    expect(maxAbsDiff(a, b.slice(0, 5 * C))).toBeLessThan(1e-5);
    model.dispose();
  });
});

describe('heads: values', () => {
  it("'mean' averages the real frames only, then applies Dense (worked out by hand)", () => {
    const model = buildHead(resolveHeadConfig({ type: 'mean' }), { dim: 2, classes: 2 }, 0);
    // Dense kernel [[1, 0], [0, 1]], bias 0: the logits are the mean itself.
    model.getLayer('fw_dense').setWeights([
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]),
      tf.zeros([2]),
    ]);
    // Real frames [1, 3] and [3, 1]: mean [2, 2] -> softmax [0.5, 0.5]. Padded [0, 0] ignored.
    const x = Float32Array.from([1, 3, 3, 1, 0, 0]);
    const y = tf.tidy(() =>
      (model.predict(embeddingsTensor(x, [1, 3, 2], [1, 1, 0])) as tf.Tensor).dataSync(),
    );
    expect(y[0]).toBeCloseTo(0.5, 6);
    // Frames [2, 0] and [0, 0 (padding)]: mean over the real one is [2, 0] -> softmax [e^2, 1]/(e^2 + 1).
    const z = tf.tidy(() =>
      (
        model.predict(embeddingsTensor(Float32Array.from([2, 0, 0, 0]), [1, 2, 2], [1, 0])) as tf.Tensor
      ).dataSync(),
    );
    expect(z[0]).toBeCloseTo(Math.exp(2) / (Math.exp(2) + 1), 5);
    model.dispose();
  });

  it("'mean' is blind to frame order and 'lstm' is not", () => {
    const clip = randomClip(6, 8);
    const reversed = new Float32Array(clip.length);
    for (let t = 0; t < 6; t++) reversed.set(clip.subarray((5 - t) * D, (6 - t) * D), t * D);
    for (const type of ['mean', 'lstm'] as HeadType[]) {
      const model = buildHead(resolveHeadConfig({ type, units: 4 }), { dim: D, classes: C }, 5);
      const a = tf.tidy(() => (model.predict(embeddingsTensor(clip, [1, 6, D])) as tf.Tensor).dataSync());
      const b = tf.tidy(() => (model.predict(embeddingsTensor(reversed, [1, 6, D])) as tf.Tensor).dataSync());
      if (type === 'mean') expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
      else expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-4);
      model.dispose();
    }
  });

  it('the same seed builds the same initial weights', () => {
    const a = buildHead(resolveHeadConfig({ units: 4 }), { dim: D, classes: C }, 9);
    const b = buildHead(resolveHeadConfig({ units: 4 }), { dim: D, classes: C }, 9);
    a.getWeights().forEach((w, i) => expect(maxAbsDiff(w.dataSync(), b.getWeights()[i].dataSync())).toBe(0));
    a.dispose();
    b.dispose();
  });
});

describe('resolveHeadConfig()', () => {
  it('fills the defaults: lstm, clip, 256 units, dropout 0.2', () => {
    expect(resolveHeadConfig()).toEqual({ type: 'lstm', mode: 'clip', units: 256, dropout: 0.2 });
  });

  it.each([
    [
      { type: 'transformer' },
      /Expected one of 'lstm', 'gru', 'bilstm', 'mean' for `head.type` but received 'transformer'/,
    ],
    [{ mode: 'video' }, /Expected one of 'clip', 'frame' for `head.mode`/],
    [{ units: 0 }, /Expected a positive integer for `head.units` but received 0/],
    [{ dropout: 1 }, /Expected a number >= 0 and < 1 for `head.dropout` but received 1/],
  ])('rejects %o', (options, message) => {
    expect(() => resolveHeadConfig(options as never)).toThrow(TypeError);
    expect(() => resolveHeadConfig(options as never)).toThrow(message);
  });
});
