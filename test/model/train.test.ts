import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, UsageError } from '../../src/errors.js';
import { selectBackend } from '../../src/tfjs/backend.js';
import { tfClassifier } from '../../src/model/classifier.js';
import type { EpochProgress, HeadClassifier } from '../../src/model/types.js';
import {
  stratifiedGroupSplit,
  trainHead,
  type TrainCheckpoint,
  type TrainData,
} from '../../src/model/train.js';
import { ROOT } from '../cli/helpers.js';
import { maxAbsDiff, prng } from './helpers.js';

const T = 6;
const D = 8;

/**
 * A toy order task: feature 0 rises over the clip ('up') or falls ('down'); the other
 * features are noise with the same distribution in both classes. Only order tells them apart.
 */
function orderTask(n: number, seed: number): TrainData & { labels: string[]; groups: string[] } {
  const rand = prng(seed);
  const embeddings = new Float32Array(n * T * D);
  const labels: string[] = [];
  const groups: string[] = [];
  for (let i = 0; i < n; i++) {
    const up = i % 2 === 0;
    const values = Array.from({ length: T }, () => 0.1 + rand());
    values.sort((a, b) => (up ? a - b : b - a));
    for (let t = 0; t < T; t++) {
      embeddings[(i * T + t) * D] = values[t];
      for (let j = 1; j < D; j++) embeddings[(i * T + t) * D + j] = 0.1 + rand();
    }
    labels.push(up ? 'up' : 'down');
    groups.push(`video${Math.floor(i / 4)}`);
  }
  return { embeddings, shape: [n, T, D], labels, groups };
}

beforeAll(async () => {
  await selectBackend('auto');
});

describe('trainHead()', () => {
  it('learns an order-only task with the lstm head and reports progress every epoch', async () => {
    const data = orderTask(96, 1);
    const progress: EpochProgress[] = [];
    const head = await trainHead(data, {
      head: { units: 16, dropout: 0 },
      epochs: 30,
      learningRate: 0.01,
      seed: 1,
      onEpoch: (p) => progress.push(p),
    });
    expect(progress.length).toBe(head.info.metrics!.epochs);
    expect(progress.map((p) => p.epoch)).toEqual(progress.map((_, i) => i + 1));
    for (const p of progress) {
      expect(Number.isFinite(p.loss)).toBe(true);
      expect(p.valLoss).not.toBeNull();
    }
    const test = orderTask(40, 99);
    const probs = await head.predict(test.embeddings, test.shape);
    let ok = 0;
    test.labels.forEach((label, i) => {
      const c = probs[i * 2] > probs[i * 2 + 1] ? 0 : 1;
      if (head.labels[c] === label) ok++;
    });
    expect(head.labels).toEqual(['down', 'up']);
    expect(ok / test.labels.length).toBeGreaterThanOrEqual(0.9);
    await head.dispose();
  });

  it('is reproducible: the same seed on the same backend gives the same metrics', async () => {
    const data = orderTask(32, 2);
    const options = { head: { units: 8 }, epochs: 4, seed: 7 };
    const a = await trainHead(data, options);
    const b = await trainHead(data, options);
    expect(a.info.metrics!.history).toEqual(b.info.metrics!.history);
    const c = await trainHead(data, { ...options, seed: 8 });
    expect(c.info.metrics!.history).not.toEqual(a.info.metrics!.history);
    await Promise.all([a.dispose(), b.dispose(), c.dispose()]);
  });

  it('stops early on validation loss and keeps the best epoch', async () => {
    const data = orderTask(48, 3);
    const head = await trainHead(data, {
      head: { units: 8 },
      epochs: 60,
      patience: 2,
      learningRate: 0.05,
      seed: 3,
    });
    const m = head.info.metrics!;
    const best = Math.min(...m.history.map((h) => h.valLoss!));
    expect(m.history[m.bestEpoch - 1].valLoss).toBe(best);
    expect(m.epochs).toBeLessThanOrEqual(m.bestEpoch + 3);
    await head.dispose();
  });

  it('trains a frame-mode head with masked padding', async () => {
    // Frame label = whether feature 0 is above 0.5; padding frames are masked and labelled null.
    const rand = prng(4);
    const n = 40;
    const embeddings = new Float32Array(n * T * D);
    const labels: (string | null)[] = [];
    const masks: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const real = 3 + (i % 4);
      for (let t = 0; t < T; t++) {
        const o = (i * T + t) * D;
        if (t >= real) {
          labels.push(null);
          masks.push(false);
          continue;
        }
        for (let j = 0; j < D; j++) embeddings[o + j] = 0.1 + rand();
        labels.push(embeddings[o] > 0.6 ? 'high' : 'low');
        masks.push(true);
      }
    }
    const head = await trainHead(
      { embeddings, shape: [n, T, D], labels, masks },
      { head: { mode: 'frame', units: 8, dropout: 0 }, epochs: 40, learningRate: 0.02, seed: 4 },
    );
    expect(head.mode).toBe('frame');
    const probs = await head.predict(embeddings, [n, T, D], masks);
    expect(probs.length).toBe(n * T * 2);
    let ok = 0;
    let count = 0;
    labels.forEach((label, i) => {
      if (!masks[i]) return;
      count++;
      if (head.labels[probs[i * 2] > probs[i * 2 + 1] ? 0 : 1] === label) ok++;
    });
    expect(ok / count).toBeGreaterThan(0.85);
    await head.dispose();
  });

  it('applies class weights (balanced) without failing on imbalanced data', async () => {
    const data = orderTask(30, 5);
    data.labels = data.labels.map((_l, i) => (i < 24 ? 'a' : 'b'));
    const head = await trainHead(data, { head: { units: 4 }, epochs: 2, classWeight: 'balanced', seed: 1 });
    expect(head.labels).toEqual(['a', 'b']);
    await head.dispose();
    await expect(trainHead(data, { classWeight: { c: 2 }, epochs: 1 })).rejects.toThrow(/classWeight\.c/);
  });

  it('leaves tf.memory().numTensors unchanged after a training run', async () => {
    const data = orderTask(16, 6);
    const before = tf.memory().numTensors;
    const head = await trainHead(data, { head: { units: 4 }, epochs: 3, seed: 1 });
    await head.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects when aborted', async () => {
    const data = orderTask(16, 7);
    const controller = new AbortController();
    controller.abort(new Error('stop now'));
    await expect(trainHead(data, { signal: controller.signal })).rejects.toThrow('stop now');
    const later = new AbortController();
    const run = trainHead(data, {
      epochs: 50,
      signal: later.signal,
      onEpoch: () => later.abort(new Error('stopped mid-run')),
    });
    await expect(run).rejects.toThrow('stopped mid-run');
  });

  it.each(['lstm', 'mean'] as const)(
    "rejects promptly when aborted by a timer mid-training ('%s'), leaking no tensors",
    async (type) => {
      // Long enough to run for minutes: the timer fires only if the loop yields to the event loop.
      const rand = prng(8);
      const [n, t, d] = [64, 16, 256];
      const embeddings = Float32Array.from({ length: n * t * d }, () => 0.1 + rand());
      const labels = Array.from({ length: n }, (_, i) => (i % 2 ? 'a' : 'b'));
      const before = tf.memory().numTensors;
      const controller = new AbortController();
      let abortedAt = 0;
      setTimeout(() => {
        abortedAt = performance.now();
        controller.abort(new Error('timer abort'));
      }, 300);
      let epochs = 0;
      await expect(
        trainHead(
          { embeddings, shape: [n, t, d], labels },
          {
            head: { type, units: 64 },
            epochs: 10_000,
            patience: 10_000,
            signal: controller.signal,
            onEpoch: () => epochs++,
          },
        ),
      ).rejects.toThrow('timer abort');
      expect(abortedAt).toBeGreaterThan(0);
      expect(performance.now() - abortedAt).toBeLessThan(2000);
      expect(epochs).toBeLessThan(10_000);
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('reports the epoch count, seconds per epoch and an ETA to onEpoch, but keeps them out of the history', async () => {
    const data = orderTask(16, 9);
    const progress: EpochProgress[] = [];
    const head = await trainHead(data, {
      head: { units: 4 },
      epochs: 3,
      patience: 5,
      seed: 1,
      onEpoch: (p) => progress.push(p),
    });
    expect(progress.map((p) => p.epochs)).toEqual([3, 3, 3]);
    for (const p of progress) {
      expect(p.seconds).toBeGreaterThan(0);
      expect(p.etaSeconds).toBeGreaterThanOrEqual(0);
    }
    expect(progress[2].etaSeconds).toBe(0);
    expect(Object.keys(head.info.metrics!.history[0]).sort()).toEqual([
      'acc',
      'epoch',
      'loss',
      'lr',
      'valAcc',
      'valLoss',
    ]);
    await head.dispose();
  });
});

/** An easy task: feature 0 alone tells the classes apart, so the validation loss soon creeps towards 0. */
function easyTask(n: number, seed: number): TrainData {
  const rand = prng(seed);
  const embeddings = new Float32Array(n * T * D).map(() => 0.1 + rand());
  const labels = Array.from({ length: n }, (_, i) => (i % 2 ? 'b' : 'a'));
  labels.forEach((l, i) => {
    for (let t = 0; t < T; t++) embeddings[(i * T + t) * D] = l === 'a' ? 0.2 : 3;
  });
  return { embeddings, shape: [n, T, D], labels, groups: labels.map((_, i) => `v${Math.floor(i / 2)}`) };
}

/** Every weight of every member, flattened. */
/** Every member's weights; the members are tfjs models (`tfClassifier` gives their tfjs type). */
function allWeights(head: HeadClassifier | { members: readonly tf.LayersModel[] }): number[] {
  const members = 'predict' in head ? tfClassifier(head).members : head.members;
  return members.flatMap((m) => m.getWeights().flatMap((w) => Array.from(w.dataSync())));
}

describe('trainHead() early stopping, schedules, checkpoints and ensembles', () => {
  it('stops with the defaults once the validation loss only creeps, and says why', async () => {
    const head = await trainHead(easyTask(48, 11), { head: { units: 8 }, learningRate: 0.05, seed: 1 });
    const m = head.info.metrics!;
    expect(m.stop?.reason).toBe('early');
    expect(m.epochs - m.bestEpoch).toBe(11); // patience 10: the 11th epoch without an improvement over 0.0001 stops it
    expect(m.stop).toMatchObject({
      epoch: m.epochs,
      bestEpoch: m.bestEpoch,
      monitor: 'val_loss',
      minDelta: 0.0001,
      patience: 10,
    });
    expect(m.valAcc).toBe(1);
    expect(m.epochs).toBeLessThanOrEqual(25);
    // With no minimum delta, every tiny improvement resets the patience: it runs at least as long.
    const creeping = await trainHead(easyTask(48, 11), {
      head: { units: 8 },
      learningRate: 0.05,
      seed: 1,
      minDelta: 0,
      epochs: m.epochs + 10,
    });
    expect(creeping.info.metrics!.epochs).toBeGreaterThanOrEqual(m.epochs);
    await Promise.all([head.dispose(), creeping.dispose()]);
  });

  it('monitors val_acc when told: the first epoch of the best accuracy is kept', async () => {
    const head = await trainHead(easyTask(32, 12), {
      head: { units: 8 },
      learningRate: 0.01,
      seed: 1,
      monitor: 'val_acc',
      patience: 3,
    });
    const m = head.info.metrics!;
    const best = Math.max(...m.history.map((h) => h.valAcc!));
    expect(m.history.findIndex((h) => h.valAcc === best) + 1).toBe(m.bestEpoch);
    expect(m.stop).toMatchObject({ reason: 'early', monitor: 'val_acc', bestEpoch: m.bestEpoch, best });
    expect(m.epochs).toBe(m.bestEpoch + 4);
    await head.dispose();
  });

  it('follows the learning-rate schedules: cosine over the epochs, plateau halves after patience/2', async () => {
    const data = orderTask(16, 13);
    const cosine = await trainHead(data, {
      head: { units: 4 },
      epochs: 4,
      learningRate: 0.01,
      lrSchedule: 'cosine',
      patience: 100,
    });
    expect(cosine.info.metrics!.history.map((h) => h.lr)).toEqual(
      [0, 1, 2, 3].map((e) => (0.01 * (1 + Math.cos((Math.PI * e) / 4))) / 2),
    );
    const plateau = await trainHead(easyTask(16, 14), {
      head: { units: 4 },
      epochs: 30,
      learningRate: 0.01,
      lrSchedule: 'plateau',
      patience: 4,
      minDelta: 0.5,
    });
    const lrs = plateau.info.metrics!.history.map((h) => h.lr!);
    expect(lrs[0]).toBe(0.01);
    expect(Math.min(...lrs)).toBeLessThan(0.01);
    await Promise.all([cosine.dispose(), plateau.dispose()]);
  });

  it("resumes from any epoch's checkpoint and ends exactly where the uninterrupted run does (ensembles too)", async () => {
    const data = orderTask(24, 15);
    const options = {
      head: { units: 6 },
      epochs: 7,
      patience: 3,
      learningRate: 0.02,
      seed: 5,
      ensemble: 2,
      lrSchedule: 'plateau' as const,
    };
    const checkpoints: TrainCheckpoint[] = [];
    const whole = await trainHead(data, {
      ...options,
      onCheckpoint: (c) => void checkpoints.push(structuredClone(c)),
    });
    // One after every epoch of each member, and one between the members.
    const epochs = whole.info.metrics!.members!.map((m) => m.epochs);
    expect(checkpoints.length).toBe(epochs[0] + epochs[1] + 1);
    const expected = allWeights(whole);
    for (const at of [1, epochs[0] - 1, epochs[0], epochs[0] + 2]) {
      const resumed = await trainHead(data, { ...options, resume: checkpoints[at] });
      expect(maxAbsDiff(allWeights(resumed), expected), `resumed from checkpoint ${at}`).toBe(0);
      expect(resumed.info.metrics!.members!.map((m) => m.history)).toEqual(
        whole.info.metrics!.members!.map((m) => m.history),
      );
      await resumed.dispose();
    }
    await expect(trainHead(orderTask(20, 15), { ...options, resume: checkpoints[1] })).rejects.toThrow(
      /checkpoint was made on other data/,
    );
    await whole.dispose();
  });

  it('trains an ensemble with consecutive seeds on one split and averages its members', async () => {
    const data = orderTask(24, 16);
    const head = await trainHead(data, { head: { units: 4 }, epochs: 3, seed: 9, ensemble: 3 });
    expect(head.members.length).toBe(3);
    expect(head.info.ensemble).toEqual({ size: 3, seeds: [9, 10, 11] });
    const members = head.info.metrics!.members!;
    expect(members.map((m) => m.seed)).toEqual([9, 10, 11]);
    expect(new Set(members.map((m) => m.valClips)).size).toBe(1);
    // Member 1 is the single head of the same seed.
    const single = await trainHead(data, { head: { units: 4 }, epochs: 3, seed: 9 });
    expect(maxAbsDiff(allWeights({ members: [tfClassifier(head).members[0]] }), allWeights(single))).toBe(0);
    const probs = await head.predict(data.embeddings, data.shape);
    const each = tfClassifier(head).members.map((m) =>
      tf.tidy(() => (m.predict(tf.tensor3d(data.embeddings, data.shape)) as tf.Tensor).dataSync()),
    );
    expect(
      maxAbsDiff(
        probs,
        each[0].map((_, i) => (each[0][i] + each[1][i] + each[2][i]) / 3),
      ),
    ).toBeLessThan(1e-6);
    await Promise.all([head.dispose(), single.dispose()]);
  });
});

describe('trainHead() validation', () => {
  const good = orderTask(8, 8);

  it('rejects a single class with a clear error', async () => {
    const data = { ...good, labels: good.labels.map(() => 'only') };
    await expect(trainHead(data)).rejects.toThrow(UsageError);
    await expect(trainHead(data)).rejects.toThrow(/only one class \(only\)/);
  });

  it('rejects an empty dataset', async () => {
    await expect(
      trainHead({ embeddings: new Float32Array(0), shape: [0, T, D], labels: [] }),
    ).rejects.toThrow(/dataset is empty/);
  });

  it('rejects embeddings that do not match their shape, and mismatched dimensions at predict', async () => {
    await expect(trainHead({ ...good, shape: [8, T, D + 1] })).rejects.toThrow(ShapeError);
    const head = await trainHead(good, { head: { units: 4 }, epochs: 1 });
    await expect(head.predict(new Float32Array(2 * T * 5), [2, T, 5])).rejects.toThrow(
      /mismatched embedding dimensions \(the head takes D = 8\)/,
    );
    await head.dispose();
  });

  it.each([
    [{ epochs: 0 }, /Expected a positive integer for `epochs` but received 0/],
    [{ validationSplit: 1 }, /`validationSplit`/],
    [{ valSplit: 1 }, /Expected .* for `valSplit`/],
    [
      { valSplit: 0.1, validationSplit: 0.3 },
      /`valSplit` \(0.1\) and `validationSplit` \(0.3, its deprecated name\) conflict/,
    ],
    [{ batchSize: 1.5 }, /`batchSize`/],
    [{ head: { type: 'cnn' } }, /`head.type`/],
    [{ monitor: 'acc' }, /`monitor`/],
    [{ minDelta: -1 }, /`minDelta`/],
    [{ lrSchedule: 'step' }, /`lrSchedule`/],
    [{ ensemble: 0 }, /Expected a positive integer for `ensemble` but received 0/],
  ])('rejects options %o', async (options, message) => {
    await expect(trainHead(good, options as never)).rejects.toThrow(message);
  });

  it('rejects the wrong number of labels', async () => {
    await expect(trainHead({ ...good, labels: good.labels.slice(1) })).rejects.toThrow(/`data.labels`/);
  });
});

describe('stratifiedGroupSplit()', () => {
  it('never puts a group in both splits and keeps every class in validation', () => {
    const labels = Array.from({ length: 40 }, (_, i) => (i < 20 ? 0 : 1));
    const groups = Array.from({ length: 40 }, (_, i) => `g${Math.floor(i / 2)}`);
    const { train, val } = stratifiedGroupSplit(labels, groups, 0.25, prng(1));
    const trainGroups = new Set(train.map((i) => groups[i]));
    for (const i of val) expect(trainGroups.has(groups[i])).toBe(false);
    expect(train.length + val.length).toBe(40);
    expect(new Set(val.map((i) => labels[i]))).toEqual(new Set([0, 1]));
    // 10 groups per class, 25% -> 3 (rounded) groups -> 6 clips per class.
    expect(val.length).toBe(12);
  });

  it('keeps a lone group of a class in training', () => {
    const { train, val } = stratifiedGroupSplit([0, 0, 1], ['a', 'b', 'c'], 0.5, prng(2));
    expect(val.map((i) => i).every((i) => i !== 2)).toBe(true);
    expect(train).toContain(2);
  });
});

/**
 * The library never prints: training a head in a fresh process (where tfjs's cpu backend
 * would greet Node users on first use) writes nothing to stdout or stderr.
 */
describe('trainHead() in a fresh process', () => {
  it("prints nothing, not even tfjs's greeting", () => {
    const script = `
      import { trainHead } from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
      const emb = new Float32Array(4 * 3 * 8).map((_, i) => Math.sin(i));
      const head = await trainHead({ embeddings: emb, shape: [4, 3, 8], labels: ['a', 'b', 'a', 'b'] }, { head: { type: 'lstm' }, epochs: 2 });
      head.dispose();`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).toBe('');
  });
});
