/**
 * The model learns time: arrow of time (forward vs reversed clips of the same scenes) and
 * per-frame tagging of concatenated segments, on the generated fixture videos, held out by
 * scene / video. Embeddings of the fixture frames come from the real backbone, once per
 * machine (cached on disk by backbone id).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainHead } from '../../src/model/train.js';
import type { HeadClassifier } from '../../src/model/types.js';
import { fixture } from '../fixtures.js';
import { cachedVideoEmbeddings, evenIndices, localEmbedder, prng, type TestEmbedder } from './helpers.js';
import { argmaxRows } from '../helpers.js';

const T = 8;

function manifest(rel: string): { path: string; label: string }[] {
  const [, ...rows] = readFileSync(fixture(rel), 'utf8').trim().split('\n');
  return rows.map((row) => {
    const [path, label] = row.split(',');
    return { path, label };
  });
}

let embedder: TestEmbedder;

beforeAll(async () => {
  embedder = await localEmbedder();
});

afterAll(async () => {
  await embedder?.dispose();
});

describe('arrow of time', () => {
  // Train: 18 evenly spaced frames of each video, from which clips of 8 frames in order are
  // drawn (random sorted subsets: different speeds and offsets). Test: 8 evenly spaced frames.
  const POOL = 18;
  let train: {
    embeddings: Float32Array;
    shape: [number, number, number];
    labels: string[];
    groups: string[];
  };
  let test: { embeddings: Float32Array; shape: [number, number, number]; labels: string[] };

  beforeAll(async () => {
    const d = embedder.dim;
    const trainRows = manifest('arrow/train.csv');
    const testRows = manifest('arrow/test.csv');
    const trainEmb = await cachedVideoEmbeddings(
      embedder,
      `arrow-train-p${POOL}`,
      trainRows.map((r) => ({ file: fixture(join('arrow', r.path)), pick: (n) => evenIndices(n, POOL) })),
    );
    const testEmb = await cachedVideoEmbeddings(
      embedder,
      `arrow-test-t${T}`,
      testRows.map((r) => ({ file: fixture(join('arrow', r.path)), pick: (n) => evenIndices(n, T) })),
    );
    const rand = prng(7);
    const clips: Float32Array[] = [];
    const labels: string[] = [];
    const groups: string[] = [];
    trainRows.forEach((row, v) => {
      for (let k = 0; k < 12; k++) {
        // A sorted random subset of 8 of the 12 frames keeps the order of time.
        const chosen = [...Array(POOL).keys()]
          .sort(() => rand() - 0.5)
          .slice(0, T)
          .sort((a, b) => a - b);
        const clip = new Float32Array(T * d);
        chosen.forEach((f, s) => clip.set(trainEmb.embeddings[v].subarray(f * d, (f + 1) * d), s * d));
        clips.push(clip);
        labels.push(row.label);
        groups.push(row.path.split('/')[1]); // the scene: forward and reversed stay together
      }
    });
    const flat = new Float32Array(clips.length * T * d);
    clips.forEach((c, i) => flat.set(c, i * T * d));
    train = { embeddings: flat, shape: [clips.length, T, d], labels, groups };
    const testFlat = new Float32Array(testRows.length * T * d);
    testEmb.embeddings.forEach((e, i) => testFlat.set(e, i * T * d));
    test = { embeddings: testFlat, shape: [testRows.length, T, d], labels: testRows.map((r) => r.label) };
  });

  async function heldOutAccuracy(head: HeadClassifier): Promise<number> {
    const probs = await head.predict(test.embeddings, test.shape);
    const predicted = argmaxRows(probs, head.labels.length).map((c) => head.labels[c]);
    return predicted.filter((p, i) => p === test.labels[i]).length / predicted.length;
  }

  it('trainHead() with the lstm head reaches >= 90% on held-out scenes', async () => {
    const head = await trainHead(train, {
      head: { type: 'lstm', units: 32 },
      epochs: 12,
      valSplit: 0,
      seed: 1,
    });
    const acc = await heldOutAccuracy(head);
    await head.dispose();
    expect(acc).toBeGreaterThanOrEqual(0.9);
  });

  it('trainHead() with the order-blind mean head stays near chance (<= 65%)', async () => {
    const head = await trainHead(train, { head: { type: 'mean' }, epochs: 6, valSplit: 0, seed: 1 });
    const acc = await heldOutAccuracy(head);
    await head.dispose();
    expect(acc).toBeLessThanOrEqual(0.65);
  });
});

describe('per-frame tagging', () => {
  interface Video {
    path: string;
    segments: { start: number; end: number; label: string }[];
  }
  const FPS = 10;
  const read = (split: string) =>
    readFileSync(fixture(`segments/${split}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Video);
  const labelAt = (v: Video, frame: number) => {
    const t = (frame + 0.5) / FPS;
    return (
      v.segments.find((s) => t >= s.start && t < s.end)?.label ?? v.segments[v.segments.length - 1].label
    );
  };

  /** Every 2nd frame of each video, cut into clips of T frames (the last clip padded and masked). */
  async function clipsOf(split: string) {
    const videos = read(split);
    const d = embedder.dim;
    const emb = await cachedVideoEmbeddings(
      embedder,
      `segments-${split}-every2`,
      videos.map((v) => ({
        file: fixture(join('segments', v.path)),
        pick: (n) => Array.from({ length: Math.ceil(n / 2) }, (_, i) => i * 2),
      })),
    );
    const data: number[][] = [];
    const embeddings: Float32Array[] = [];
    const labels: (string | null)[] = [];
    const masks: boolean[] = [];
    const groups: string[] = [];
    videos.forEach((v, vi) => {
      const picks = emb.picks[vi];
      for (let first = 0; first < picks.length; first += T / 2) {
        const clip = new Float32Array(T * d);
        for (let s = 0; s < T; s++) {
          const k = first + s;
          if (k < picks.length) {
            clip.set(emb.embeddings[vi].subarray(k * d, (k + 1) * d), s * d);
            labels.push(labelAt(v, picks[k]));
            masks.push(true);
          } else {
            labels.push(null);
            masks.push(false);
          }
        }
        embeddings.push(clip);
        groups.push(v.path);
        data.push([]);
        if (first + T >= picks.length) break;
      }
    });
    const flat = new Float32Array(embeddings.length * T * d);
    embeddings.forEach((c, i) => flat.set(c, i * T * d));
    return {
      embeddings: flat,
      shape: [embeddings.length, T, d] as [number, number, number],
      labels,
      masks,
      groups,
    };
  }

  it("trainHead() in 'frame' mode reaches >= 90% frame accuracy on held-out videos", async () => {
    const train = await clipsOf('train');
    const test = await clipsOf('test');
    const head = await trainHead(train, {
      head: { type: 'lstm', mode: 'frame', units: 32 },
      epochs: 12,
      patience: 4,
      seed: 3,
    });
    const probs = await head.predict(test.embeddings, test.shape, test.masks);
    const predicted = argmaxRows(probs, head.labels.length);
    let hits = 0;
    let count = 0;
    test.labels.forEach((label, i) => {
      if (!test.masks[i]) return;
      count += 1;
      if (head.labels[predicted[i]] === label) hits += 1;
    });
    await head.dispose();
    expect(count).toBeGreaterThan(50);
    expect(hits / count).toBeGreaterThanOrEqual(0.9);
  });
});

describe('leaks', () => {
  it('trainHead() and predict() leave tf.memory().numTensors unchanged', async () => {
    const rand = prng(5);
    const n = 12;
    const d = embedder.dim;
    const embeddings = Float32Array.from({ length: n * T * d }, () => rand());
    const labels = Array.from({ length: n }, (_, i) => (i % 2 ? 'a' : 'b'));
    const before = tf.memory().numTensors;
    const head = await trainHead({ embeddings, shape: [n, T, d], labels }, { head: { units: 8 }, epochs: 2 });
    await head.predict(embeddings, [n, T, d]);
    await head.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
