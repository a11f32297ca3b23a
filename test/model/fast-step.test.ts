import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/tfjs/backend.js';
import { fastStep, type StepBatch } from '../../src/model/fast-step.js';
import { buildHead, resolveHeadConfig } from '../../src/model/heads.js';
import type { HeadMode, HeadType } from '../../src/model/types.js';
import { maxAbsDiff, prng } from './helpers.js';

const B = 3;
const T = 5;
const D = 4;
const C = 2;

beforeAll(async () => {
  await selectBackend('auto');
});

function loss(probs: tf.Tensor, y: tf.Tensor, w: tf.Tensor): tf.Scalar {
  const nll = tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probs, 1e-7, 1))), -1));
  return tf.div(tf.sum(tf.mul(nll, w)), tf.maximum(tf.sum(w), 1e-7)) as tf.Scalar;
}

/** Clip 0 is padded after 3 frames, so the masked steps are exercised too. */
function batch(mode: HeadMode, seed: number): StepBatch {
  const rand = prng(seed);
  const x = Float32Array.from({ length: B * T * D }, () => rand() * 2 - 1);
  const keep = new Float32Array(B * T).fill(1);
  for (let s = 3; s < T; s++) {
    keep[s] = 0;
    x.fill(0, s * D, (s + 1) * D);
  }
  const n = mode === 'frame' ? B * T : B;
  const labels = Array.from({ length: n }, (_, i) => i % C);
  const w = Float32Array.from({ length: n }, (_, i) => (mode === 'frame' ? keep[i] : 1));
  return tf.tidy(() => ({
    x: tf.tensor3d(x, [B, T, D]),
    y: mode === 'frame' ? tf.reshape(tf.oneHot(labels, C), [B, T, C]) : tf.oneHot(labels, C),
    w: mode === 'frame' ? tf.tensor2d(w, [B, T]) : tf.tensor1d(w),
    keep,
  }));
}

describe('fastStep()', () => {
  it.each([
    ['lstm', 'clip'],
    ['lstm', 'frame'],
    ['gru', 'clip'],
    ['gru', 'frame'],
    ['bilstm', 'clip'],
    ['bilstm', 'frame'],
  ] as [HeadType, HeadMode][])(
    "'%s' %s mode: the same loss and gradients as autodiff through the layers",
    (type, mode) => {
      const config = resolveHeadConfig({ type, mode, units: 3 });
      const model = buildHead(config, { dim: D, classes: C }, 3);
      // Non-zero biases, so every term of the gradients shows.
      model.setWeights(
        model
          .getWeights()
          .map((w, i) =>
            tf.tidy(() => tf.add(w, tf.mul(0.3, tf.randomUniform(w.shape, -1, 1, 'float32', i + 1)))),
          ),
      );
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const step = fastStep(model, config, loss)!;
      const data = batch(mode, 11);
      const fast = step.gradients(data, variables);
      const reference = tf.variableGrads(
        () => loss(model.apply(data.x, { training: true }) as tf.Tensor, data.y, data.w),
        variables,
      );
      expect(Math.abs(fast.loss.dataSync()[0] - reference.value.dataSync()[0])).toBeLessThan(1e-5);
      variables.forEach((v, i) => {
        expect(fast.grads[i].shape).toEqual(v.shape);
        expect(maxAbsDiff(fast.grads[i].dataSync(), reference.grads[v.name].dataSync())).toBeLessThan(1e-5);
      });
      tf.dispose([
        fast.loss,
        ...fast.grads,
        reference.value,
        ...Object.values(reference.grads),
        data.x,
        data.y,
        data.w,
      ]);
      model.dispose();
    },
  );

  it('gives no fast step for the mean head', () => {
    const config = resolveHeadConfig({ type: 'mean' });
    const model = buildHead(config, { dim: D, classes: C }, 1);
    expect(fastStep(model, config, loss)).toBeUndefined();
    model.dispose();
  });

  it('leaves tf.memory().numTensors unchanged after a step', () => {
    const config = resolveHeadConfig({ type: 'bilstm', mode: 'frame', units: 3 });
    const model = buildHead(config, { dim: D, classes: C }, 3);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = tf.train.adam(0.01);
    const step = fastStep(model, config, loss)!;
    const data = batch('frame', 2);
    const once = () => tf.dispose(Object.values(step.run(data, optimizer, variables)));
    once(); // the optimizer's moments are made on the first step
    const before = tf.memory().numTensors;
    once();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([data.x, data.y, data.w]);
    optimizer.dispose();
    model.dispose();
  });
});
