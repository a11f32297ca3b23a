/**
 * Training gives the numbers it gave before any speed work: a few epochs of `trainHead` on a
 * fixed seed (dropout on, padded frames, class weights from an unbalanced set) end on the loss
 * and accuracy curves, and the final weights, stored in `train-reference.json`. A change to the
 * maths of a training step (the dropout draws, the masking, the gradients, Adam) fails here;
 * float-level differences (another summation order, one rounding more or less) do not.
 *
 * The stored values were computed by the training step as it was before the LSTM step moved to
 * JavaScript and dropout drew in bulk (commit 37b4ede). To record them again (only when the maths is meant to change):
 *   FRAMEWISE_WRITE_TRAIN_REFERENCE=1 node node_modules/vitest/vitest.mjs run test/model/train-reference.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/tfjs/backend.js';
import { tfClassifier } from '../../src/model/classifier.js';
import type { HeadOptions } from '../../src/model/types.js';
import { trainHead, type TrainData } from '../../src/model/train.js';
import { prng } from './helpers.js';

const N = 44;
const T = 7;
const D = 24;
const FILE = join(import.meta.dirname, 'train-reference.json');
const WRITE = process.env.FRAMEWISE_WRITE_TRAIN_REFERENCE === '1';

interface Run {
  loss: number[];
  acc: number[];
  valLoss: (number | null)[];
  /** Per weight tensor: its sum, its sum of squares, and its first values. */
  weights: { sum: number; sumSq: number; head: number[] }[];
}

/** Three classes, unbalanced; every fourth clip ends in padding; frame labels follow the clip's. */
function dataset(frame: boolean): TrainData {
  const rand = prng(5);
  const embeddings = new Float32Array(N * T * D);
  const masks = new Uint8Array(N * T).fill(1);
  const labels: string[] = [];
  for (let i = 0; i < N; i++) {
    const c = i % 5 === 0 ? 2 : i % 2;
    const real = i % 4 === 3 ? T - 3 : T;
    for (let t = 0; t < T; t++) {
      if (t >= real) {
        masks[i * T + t] = 0;
        continue;
      }
      for (let j = 0; j < D; j++) embeddings[(i * T + t) * D + j] = rand() * 2 - 1 + (j === c ? 0.5 : 0);
    }
    const label = ['a', 'b', 'c'][c];
    if (frame) for (let t = 0; t < T; t++) labels.push(t < real ? label : 'a');
    else labels.push(label);
  }
  return { embeddings, shape: [N, T, D], labels, masks };
}

async function run(head: HeadOptions): Promise<Run> {
  const r: Run = { loss: [], acc: [], valLoss: [], weights: [] };
  const model = await trainHead(dataset(head.mode === 'frame'), {
    head: { units: 12, ...head },
    epochs: 4,
    patience: 10,
    batchSize: 8,
    learningRate: 0.01,
    seed: 3,
    onEpoch: (e) => {
      r.loss.push(e.loss);
      r.acc.push(e.acc);
      r.valLoss.push(e.valLoss);
    },
  });
  for (const w of tfClassifier(model).model.getWeights()) {
    const v = w.dataSync();
    let sum = 0;
    let sumSq = 0;
    for (const x of v) {
      sum += x;
      sumSq += x * x;
    }
    r.weights.push({ sum, sumSq, head: Array.from(v.subarray(0, 6)) });
  }
  await model.dispose();
  return r;
}

const CASES: Record<string, HeadOptions> = {
  'lstm clip': { type: 'lstm' },
  'lstm frame, no dropout': { type: 'lstm', mode: 'frame', dropout: 0 },
  'bilstm clip': { type: 'bilstm' },
  'gru frame': { type: 'gru', mode: 'frame' },
  'mean clip': { type: 'mean' },
};

beforeAll(async () => {
  await selectBackend('auto');
});

/** |a - b| within an absolute plus a relative tolerance. */
function close(a: number, b: number, tol = 2e-4): boolean {
  return Math.abs(a - b) <= tol * (1 + Math.abs(b));
}

describe('trainHead() against the stored reference', () => {
  const stored: Record<string, Run> = WRITE ? {} : JSON.parse(readFileSync(FILE, 'utf8'));
  const runs: Record<string, Run> = {};

  it.each(Object.keys(CASES))('%s: the same curves and final weights', async (name) => {
    const got = await run(CASES[name]);
    runs[name] = got;
    if (WRITE) {
      if (Object.keys(runs).length === Object.keys(CASES).length)
        writeFileSync(FILE, `${JSON.stringify(runs, null, 1)}\n`);
      return;
    }
    const want = stored[name];
    const mismatches: string[] = [];
    const check = (what: string, a: number | null, b: number | null) => {
      if (a === null || b === null ? a !== b : !close(a, b)) mismatches.push(`${what}: ${a} vs ${b}`);
    };
    got.loss.forEach((v, i) => check(`loss[${i}]`, v, want.loss[i]));
    got.acc.forEach((v, i) => check(`acc[${i}]`, v, want.acc[i]));
    got.valLoss.forEach((v, i) => check(`valLoss[${i}]`, v, want.valLoss[i]));
    expect(got.weights.length).toBe(want.weights.length);
    got.weights.forEach((w, i) => {
      check(`weight ${i} sum`, w.sum, want.weights[i].sum);
      check(`weight ${i} sumSq`, w.sumSq, want.weights[i].sumSq);
      w.head.forEach((v, j) => check(`weight ${i}[${j}]`, v, want.weights[i].head[j]));
    });
    expect(mismatches).toEqual([]);
  });
});
