import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError, ShapeError } from '../../../src/errors.js';
import {
  backboneInfo,
  loadBackbone,
  normalizeFrames,
  type LoadedBackbone,
} from '../../../src/tfjs/registry.js';
import type { BackboneInfo } from '../../../src/embedding/backbone-spec.js';
import { createEmbedder, type FrameEmbedder } from '../../../src/engines/tfjs/embedder.js';
import { loadModel } from '../../../src/model/model-files.js';
import { backboneArtifacts } from '../../../src/engines/tfjs/fast.js';
import {
  autoWorkers,
  createWorkerPool,
  spawnWorkerPool,
  workerScript,
  type WorkerPool,
} from '../../../src/engines/tfjs/pool.js';
import { fixture } from '../../fixtures.js';
import { maxAbsDiff, realFrames, testCacheDir } from '../../model/helpers.js';

const S = 224;
const D = 1280;
const FRAME = S * S * 3;

/** Threads of this process (Linux): each worker_thread is one. */
function threadCount(): number | undefined {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return undefined;
  }
}

describe('createWorkerPool()', () => {
  let backbone: LoadedBackbone;
  let artifacts: tf.io.ModelArtifacts;
  let info: BackboneInfo;
  let pool: WorkerPool;
  /** Real frames of two clips [B=2, T=4, S, S, 3] and the in-process, unfolded features [2, 4, D]. */
  let clips: Uint8Array;
  let expected: Float32Array;
  let threadsBefore: number | undefined;

  beforeAll(async () => {
    const cacheDir = testCacheDir();
    backbone = await loadBackbone('mobilenet_v2', { backend: 'wasm', cacheDir });
    info = backboneInfo(backbone);
    const source = await backboneArtifacts(backbone, { cacheDir });
    expect(source.folded).toBe(true);
    artifacts = source.artifacts;

    const videos = readdirSync(fixture('arrow/forward')).sort();
    clips = new Uint8Array(8 * FRAME);
    // Two scenes that do not start from black, 4 frames 8 apart from each: distinct frames.
    const [a, b] = videos.filter((v) => !v.startsWith('fade'));
    clips.set(realFrames(`arrow/forward/${a}`, 4, 8), 0);
    clips.set(realFrames(`arrow/forward/${b}`, 4, 8), 4 * FRAME);
    expected = tf.tidy(
      () =>
        backbone
          .embed(normalizeFrames(tf.tensor4d(clips, [8, S, S, 3], 'int32'), backbone.normalize))
          .dataSync() as Float32Array,
    );

    threadsBefore = threadCount();
    pool = await createWorkerPool({ info, artifacts, backend: 'wasm', workers: 2 });
  });

  afterAll(async () => {
    await pool?.dispose();
    backbone?.dispose();
  });

  it('runs one resident worker per requested slot, each on its own wasm backend', () => {
    expect(pool.size).toBe(2);
    expect(pool.liveWorkers).toBe(2);
    expect(pool.backend.name).toBe('wasm');
    if (threadsBefore !== undefined) expect(threadCount()!).toBeGreaterThanOrEqual(threadsBefore + 2);
    expect(workerScript().pathname).toMatch(/dist\/engines\/tfjs\/worker\.js$/);
  });

  it('gives the in-process (unfolded) features within 1e-4 on real frames, in clip and frame order', async () => {
    const out = await pool.embedClips(clips, [2, 4, S, S, 3]);
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(2 * 4 * D);
    expect(Math.max(...expected)).toBeGreaterThan(0.1);
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-4);
    // The same "label" for every frame: the index of the strongest feature (unless the top two
    // are closer than the tolerance, where either is right).
    for (let i = 0; i < 8; i++) {
      const row = (a: Float32Array) => Array.from(a.subarray(i * D, (i + 1) * D));
      const want = row(expected);
      const top = want.indexOf(Math.max(...want));
      const runnerUp = Math.max(...want.filter((_, k) => k !== top));
      const got = row(out);
      if (want[top] - runnerUp > 1e-4) expect(got.indexOf(Math.max(...got))).toBe(top);
    }
  });

  it('gives the same numbers for one frame at a time and for concurrent calls', async () => {
    const singles = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        pool.embedClips(clips.slice(i * FRAME, (i + 1) * FRAME), [1, 1, S, S, 3]),
      ),
    );
    singles.forEach((single, i) =>
      expect(maxAbsDiff(single, expected.subarray(i * D, (i + 1) * D))).toBeLessThan(1e-4),
    );
  });

  it('moves the caller buffer with transfer: true, and copies it otherwise', async () => {
    const mine = clips.slice(0, FRAME);
    await pool.embedClips(mine, [1, 1, S, S, 3]);
    expect(mine.byteLength).toBe(FRAME); // copied: still usable
    const out = await pool.embedClips(mine, [1, 1, S, S, 3], { transfer: true });
    expect(mine.byteLength).toBe(0); // moved to the worker: detached
    expect(maxAbsDiff(out, expected.subarray(0, D))).toBeLessThan(1e-4);
  });

  it('rejects bad shapes before any work', async () => {
    await expect(pool.embedClips(clips, [2, 4, 112, 112, 3])).rejects.toBeInstanceOf(ShapeError);
    await expect(pool.embedClips(clips.subarray(0, 100), [2, 4, S, S, 3])).rejects.toBeInstanceOf(ShapeError);
  });

  it('embedClips() rejects when aborted, promptly, and the pool keeps working', async () => {
    const controller = new AbortController();
    const big = new Uint8Array(32 * FRAME);
    for (let i = 0; i < 4; i++) big.set(clips, i * clips.length);
    let abortedAt = 0;
    const call = pool.embedClips(big, [4, 8, S, S, 3], { signal: controller.signal });
    setTimeout(() => {
      abortedAt = performance.now();
      controller.abort(new Error('user abort'));
    }, 50);
    await expect(call).rejects.toThrow('user abort');
    // At once, not after the 16 frames each worker is running (well over a second on wasm).
    expect(performance.now() - abortedAt).toBeLessThan(300);
    const already = AbortSignal.abort(new Error('too late'));
    await expect(pool.embedClips(clips, [2, 4, S, S, 3], { signal: already })).rejects.toThrow('too late');
    const out = await pool.embedClips(clips, [2, 4, S, S, 3]);
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-4);
  });

  it('dispose() terminates every worker and later calls reject', async () => {
    const other = await createWorkerPool({ info, artifacts, backend: 'wasm', workers: 1 });
    const during = threadCount();
    const pending = expect(other.embedClips(clips, [2, 4, S, S, 3])).rejects.toThrow(/disposed/);
    await other.dispose();
    await pending;
    expect(other.liveWorkers).toBe(0);
    if (during !== undefined) expect(threadCount()!).toBeLessThan(during);
    await expect(other.embedClips(clips, [2, 4, S, S, 3])).rejects.toBeInstanceOf(ModelError);
    await other.dispose(); // twice is fine
  });

  it('a worker that cannot load the backbone rejects createWorkerPool() with a ModelError and leaves no worker', async () => {
    const threads = threadCount();
    const broken = { ...artifacts, weightData: new ArrayBuffer(16) };
    await expect(
      createWorkerPool({ info, artifacts: broken, backend: 'wasm', workers: 1 }),
    ).rejects.toBeInstanceOf(ModelError);
    if (threads !== undefined) expect(threadCount()!).toBeLessThanOrEqual(threads);
  });

  it('createWorkerPool() rejects an aborted signal and bad options', async () => {
    await expect(
      createWorkerPool({ info, artifacts, signal: AbortSignal.abort(new Error('no')) }),
    ).rejects.toThrow('no');
    await expect(createWorkerPool({ info, artifacts, workers: 0 })).rejects.toThrow(
      /Expected a positive integer for `options.workers` but received 0/,
    );
  });

  it('autoWorkers() leaves room for decoding and respects memory', () => {
    expect(autoWorkers('wasm', 2, 8 * 2 ** 30)).toBe(2);
    expect(autoWorkers('wasm', 1, 8 * 2 ** 30)).toBe(1);
    expect(autoWorkers('wasm', 8, 64 * 2 ** 30)).toBe(6);
    expect(autoWorkers('wasm', 64, 256 * 2 ** 30)).toBe(8);
    expect(autoWorkers('wasm', 16, 1 * 2 ** 30)).toBe(1);
    // tfjs-node loads in one thread of a process only (tensorflow/tfjs#8388): it runs in the main thread.
    expect(autoWorkers('tensorflow', 16, 64 * 2 ** 30)).toBe(0);
    expect(() => spawnWorkerPool({ backend: 'tensorflow', workers: 1 })).toThrow(/main thread only/);
  });

  it('the worker is built JavaScript (tests run it from dist/)', () => {
    expect(readFileSync(workerScript(), 'utf8')).toMatch(/parentPort/);
  });
});

describe('createEmbedder() fast path', () => {
  const cacheDir = testCacheDir();
  let plain: FrameEmbedder;
  let pooled: FrameEmbedder;

  beforeAll(async () => {
    plain = await createEmbedder({ backend: 'wasm', cacheDir, workers: 0, fold: false });
    pooled = await createEmbedder({ backend: 'wasm', cacheDir });
  });

  afterAll(async () => {
    await Promise.all([plain?.dispose(), pooled?.dispose()]);
  });

  it('runs a folded backbone in workers by default, cached, with the plain in-process features', async () => {
    const videos = readdirSync(fixture('arrow/reversed'))
      .sort()
      .filter((v) => !v.startsWith('fade'));
    const clip = realFrames(`arrow/reversed/${videos[2]}`, 4, 8); // [1, 4, S, S, 3]
    const local = await createEmbedder({ backend: 'wasm', cacheDir, workers: 0 });
    try {
      expect(existsSync(join(cacheDir, 'backbones', `${plain.backboneId}-folded`, 'folded.json'))).toBe(true);
      expect(pooled.backboneId).toBe(plain.backboneId);
      expect(pooled.backbone).toEqual(plain.backbone);
      expect(pooled.backend!.reason).toMatch(
        new RegExp(`${autoWorkers('wasm')} worker thread.*BatchNorm folded`),
      );
      const want = await plain.embedClips(clip, [1, 4, S, S, 3]);
      expect(maxAbsDiff(await local.embedClips(clip, [1, 4, S, S, 3]), want)).toBeLessThan(1e-4);
      expect(maxAbsDiff(await pooled.embedClips(clip, [1, 4, S, S, 3]), want)).toBeLessThan(1e-4);
    } finally {
      await local.dispose();
    }
  });

  it('gives the same labels as the plain path on the sample videos with the shipped sample model', async () => {
    const root = join(import.meta.dirname, '..', '..', '..', 'samples');
    const rows = readFileSync(join(root, 'labels.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(','));
    // 6 frames 5 apart per video (the head takes any T; fewer frames keep the plain path quick).
    const T = 6;
    const clips = new Uint8Array(rows.length * T * FRAME); // [B, T, S, S, 3]
    rows.forEach(([file], i) => clips.set(realFrames(join(root, file), T, 5), i * T * FRAME));
    const shape: [number, number, number, number, 3] = [rows.length, T, S, S, 3];
    const [want, got] = [await plain.embedClips(clips, shape), await pooled.embedClips(clips, shape)];
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
    const classifier = await loadModel(join(root, 'model'), {
      backboneId: plain.backboneId,
      backend: 'wasm',
    });
    try {
      const C = classifier.labels.length;
      const [pWant, pGot] = [
        await classifier.predict(want, [rows.length, T, D]),
        await classifier.predict(got, [rows.length, T, D]),
      ];
      expect(maxAbsDiff(pGot, pWant)).toBeLessThan(1e-4);
      const labels = (p: Float32Array) =>
        rows.map(
          (_, i) =>
            classifier.labels[
              Array.from(p.subarray(i * C, (i + 1) * C)).reduce(
                (best, v, k, a) => (v > a[best] ? k : best),
                0,
              )
            ],
        );
      expect(labels(pGot)).toEqual(labels(pWant));
      // Both directions occur, so the comparison is not between two constant answers.
      expect(new Set(labels(pWant)).size).toBe(2);
    } finally {
      await classifier.dispose();
    }
  });

  it.each([
    [{ workers: -1 }, /Expected a non-negative integer for `workers` but received -1/],
    [{ workers: 'many' }, /Expected a non-negative integer for `workers` but received 'many'/],
    [{ fold: 'yes' }, /Expected a boolean for `fold` but received 'yes'/],
  ])('createEmbedder(%o) is a TypeError', async (options, message) => {
    await expect(createEmbedder(options as never)).rejects.toThrow(message);
  });
});
