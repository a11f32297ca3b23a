import * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../../src/errors.js';
import { createFrameEmbedder } from '../../../src/engines/index.js';
import { createOnnxEmbedder, onnxInWorker } from '../../../src/engines/onnx/embedder.js';
import { onnxCachePaths } from '../../../src/engines/onnx/model.js';
import { OnnxUnavailableError } from '../../../src/engines/onnx/runtime.js';
import { modelToArtifacts, writeArtifacts } from '../../../src/tfjs/artifacts.js';
import { embedClipsLocal, prepareLocalModel } from '../../../src/engines/tfjs/embedder.js';
import { loadBackbone, type LoadedBackbone } from '../../../src/tfjs/registry.js';
import type { FrameEmbedder } from '../../../src/embedding/frame-embedder.js';
import { fixture } from '../../fixtures.js';
import { maxAbsDiff, randomFrames, realFrames, testCacheDir } from '../../model/helpers.js';
import { tempDir } from '../../helpers.js';

const root = tempDir('framewise-onnx-');

/** Real frames: `perVideo` frames 6 apart from each of the first scenes that do not start from black. */
function realClips(S: number, videos: number, perVideo: number): Uint8Array {
  const names = readdirSync(fixture('arrow/forward'))
    .sort()
    .filter((v) => !v.startsWith('fade'))
    .slice(0, videos);
  const data = new Uint8Array(videos * perVideo * S * S * 3);
  names.forEach((v, i) =>
    data.set(realFrames(`arrow/forward/${v}`, perVideo, 6, S), i * perVideo * S * S * 3),
  );
  return data;
}

/** The registry backbone on tfjs, unfolded, in this thread: the reference the engine must match. */
async function tfjsEmbeddings(
  backbone: LoadedBackbone,
  data: Uint8Array,
  shape: [number, number, number, number, 3],
): Promise<Float32Array> {
  return embedClipsLocal(prepareLocalModel(backbone), data, shape);
}

describe('createOnnxEmbedder() on mobilenet_v2', () => {
  let onnx: FrameEmbedder;
  let reference: LoadedBackbone;
  const S = 224;

  beforeAll(async () => {
    // maxBatchFrames 3: 8 frames go in 3 runs, so the views at an offset into the clip buffer are exercised.
    onnx = await createOnnxEmbedder({ cacheDir: testCacheDir(), maxBatchFrames: 3, intraOpThreads: 1 });
    reference = await loadBackbone('mobilenet_v2', { cacheDir: testCacheDir() });
  });
  afterAll(async () => {
    await onnx?.dispose();
    reference?.dispose();
  });

  it('has the tfjs backbone id, size and D, and names the engine, with no tfjs backend', () => {
    expect(onnx.backboneId).toBe(reference.id);
    expect(onnx.inputSize).toBe(224);
    expect(onnx.dim).toBe(1280);
    expect(onnx.engine.name).toBe('onnx');
    expect(onnx.backend).toBeUndefined(); // `backend` is the tfjs backend only
    expect(onnx.engine.reason).toMatch(
      /^onnxruntime-node 1\.\d+\.\d+; mobilenet_v2 .*; 1 intra-op thread, spinning off, 3 frames a run; in a worker thread$/,
    );
  });

  it('gives the tfjs embeddings within 1e-4 on real frames, [B, T, D]', async () => {
    const data = realClips(S, 2, 4); // 2 clips x 4 frames
    const shape: [number, number, number, number, 3] = [2, 4, S, S, 3];
    const [got, want] = [await onnx.embedClips(data, shape), await tfjsEmbeddings(reference, data, shape)];
    expect(got.length).toBe(2 * 4 * 1280);
    expect(Math.max(...want)).toBeGreaterThan(0.1); // real features, not all zeros
    // Different frames give different embeddings (the offsets are right).
    expect(maxAbsDiff(got.subarray(0, 1280), got.subarray(1280, 2560))).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });

  it('rejects with the reason when aborted, before and during a call', async () => {
    const data = realClips(S, 1, 2);
    const before = new AbortController();
    before.abort(new Error('cancelled'));
    await expect(onnx.embedClips(data, [1, 2, S, S, 3], { signal: before.signal })).rejects.toThrow(
      'cancelled',
    );
    const during = new AbortController();
    const call = onnx.embedClips(new Uint8Array(12 * S * S * 3), [4, 3, S, S, 3], { signal: during.signal });
    during.abort(new Error('stopped'));
    await expect(call).rejects.toThrow('stopped');
    // The session is still usable afterwards.
    expect((await onnx.embedClips(data, [1, 2, S, S, 3])).length).toBe(2 * 1280);
  });

  it('runs the session in a worker thread: the same embeddings to the bit as on the main thread, which stays free', async () => {
    const data = realClips(S, 2, 6); // 2 clips x 6 frames
    const shape: [number, number, number, number, 3] = [2, 6, S, S, 3];
    const here = await createOnnxEmbedder({
      cacheDir: testCacheDir(),
      maxBatchFrames: 12,
      intraOpThreads: 1,
      worker: false,
    });
    const there = await createOnnxEmbedder({
      cacheDir: testCacheDir(),
      maxBatchFrames: 12,
      intraOpThreads: 1,
    });
    try {
      expect(here.engine.reason).toMatch(/; on the main thread$/);
      expect(there.engine.reason).toMatch(/; in a worker thread$/);
      /** The call's output, and how busy this thread's event loop was during it (0 idle .. 1 busy). */
      const busy = async (embedder: FrameEmbedder): Promise<[Float32Array, number]> => {
        const start = performance.eventLoopUtilization();
        const out = await embedder.embedClips(data.slice(), shape);
        return [out, performance.eventLoopUtilization(start).utilization];
      };
      await busy(here); // warm both sessions up
      await busy(there);
      const [want, hereBusy] = await busy(here);
      const [got, thereBusy] = await busy(there);
      expect(maxAbsDiff(got, want)).toBe(0);
      // One run of 12 frames holds the main thread when it runs here, and never in the worker.
      expect(hereBusy).toBeGreaterThan(0.5);
      expect(thereBusy).toBeLessThan(0.25);
    } finally {
      await here.dispose();
      await there.dispose();
    }
  });

  it('moves a buffer given with transfer (detached afterwards) and copies one that is not', async () => {
    const data = realClips(S, 1, 2);
    const kept = data.slice();
    await onnx.embedClips(kept, [1, 2, S, S, 3]);
    expect(kept.byteLength).toBe(2 * S * S * 3);
    const given = data.slice();
    const out = await onnx.embedClips(given, [1, 2, S, S, 3], { transfer: true });
    expect(given.byteLength).toBe(0);
    expect(out.length).toBe(2 * 1280);
  });

  it('rejects a bad FRAMEWISE_ONNX_WORKER', () => {
    expect(() => onnxInWorker(undefined, { FRAMEWISE_ONNX_WORKER: 'yes' })).toThrow(
      /Expected '0' or '1' for `FRAMEWISE_ONNX_WORKER` but received 'yes'/,
    );
    expect(onnxInWorker(undefined, { FRAMEWISE_ONNX_WORKER: '0' })).toBe(false);
    expect(onnxInWorker(undefined, {})).toBe(true);
    expect(onnxInWorker(false, {})).toBe(false);
  });

  it('rejects a clip buffer of the wrong shape', async () => {
    await expect(onnx.embedClips(new Uint8Array(112 * 112 * 3), [1, 1, 112, 112, 3])).rejects.toThrow(
      /expected shape \[\?, \?, 224, 224, 3\]/,
    );
  });
});

describe('createOnnxEmbedder() on inception_v3', () => {
  it('gives the tfjs embeddings within 1e-4 on real frames', async () => {
    const S = 299;
    const onnx = await createOnnxEmbedder({ backbone: 'inception_v3', cacheDir: testCacheDir() });
    const reference = await loadBackbone('inception_v3', { cacheDir: testCacheDir() });
    try {
      expect(onnx.backboneId).toBe(reference.id);
      expect(onnx.dim).toBe(2048);
      const data = realClips(S, 2, 1);
      const shape: [number, number, number, number, 3] = [2, 1, S, S, 3];
      const [got, want] = [await onnx.embedClips(data, shape), await tfjsEmbeddings(reference, data, shape)];
      expect(Math.max(...want)).toBeGreaterThan(0.1);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
    } finally {
      await onnx.dispose();
      reference.dispose();
    }
  });
});

describe('the converted-model cache', () => {
  it('converts once, then loads the cached model (unchanged on disk) and gives the same embeddings', async () => {
    const cacheDir = join(root, 'cache-reuse');
    const first = await createOnnxEmbedder({ cacheDir });
    const { index, model } = onnxCachePaths(cacheDir, 'mobilenet_v2', first.backboneId);
    const data = realClips(224, 1, 2);
    let firstOut: Float32Array;
    try {
      expect(first.engine.reason).toMatch(/mobilenet_v2 converted now \(max \|onnx - tfjs\| [\d.e+-]+\)/);
      expect(existsSync(index) && existsSync(model!)).toBe(true);
      firstOut = await first.embedClips(data, [1, 2, 224, 224, 3]);
    } finally {
      await first.dispose();
    }
    const stamp = statSync(model!).mtimeMs;
    const indexText = readFileSync(index, 'utf8');
    const second = await createOnnxEmbedder({ cacheDir });
    try {
      expect(second.engine.reason).toMatch(/mobilenet_v2 converted model from the cache/);
      expect(second.backboneId).toBe(first.backboneId);
      expect(statSync(model!).mtimeMs).toBe(stamp);
      expect(readFileSync(index, 'utf8')).toBe(indexText);
      expect(maxAbsDiff(await second.embedClips(data, [1, 2, 224, 224, 3]), firstOut)).toBe(0);
    } finally {
      await second.dispose();
    }
    // A damaged model file is a miss: converted again, never run.
    writeFileSync(model!, Buffer.from('not a model'));
    const third = await createOnnxEmbedder({ cacheDir });
    try {
      expect(third.engine.reason).toMatch(/converted now/);
      expect(statSync(model!).size).toBeGreaterThan(1e6);
    } finally {
      await third.dispose();
    }
  });
});

/** A custom tfjs backbone on disk whose last layer the converter has no mapping for. */
async function unsupportedBackbone(
  dir: string,
): Promise<{ path: string; inputSize: number; normalize: '0..1'; name: string }> {
  const input = tf.input({ shape: [32, 32, 3] });
  const x = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, strides: 2, name: 'conv' })
    .apply(input) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const y = tf.layers.layerNormalization({ name: 'ln' }).apply(g) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: y });
  try {
    await writeArtifacts(dir, await modelToArtifacts(model));
  } finally {
    model.dispose();
  }
  return { path: dir, inputSize: 32, normalize: '0..1', name: 'with_ln' };
}

describe('createFrameEmbedder() engine choice', () => {
  const saved = process.env.FRAMEWISE_ONNXRUNTIME;
  afterEach(() => {
    if (saved === undefined) delete process.env.FRAMEWISE_ONNXRUNTIME;
    else process.env.FRAMEWISE_ONNXRUNTIME = saved;
  });

  it('auto runs onnx where onnxruntime-node loads and the backbone converts', async () => {
    const embedder = await createFrameEmbedder({ cacheDir: testCacheDir() });
    try {
      expect(embedder.engine.name).toBe('onnx');
      expect(embedder.engine.reason).toMatch(/^engine auto: onnxruntime-node /);
      expect(embedder.backend).toBeUndefined();
    } finally {
      await embedder.dispose();
    }
  });

  it.each([
    ['off', /onnx was refused \(turned off by FRAMEWISE_ONNXRUNTIME\)/],
    [
      'onnxruntime-node-not-installed',
      /onnx was refused \(onnxruntime-node-not-installed is not installed\)/,
    ],
  ])(
    'auto falls back to tfjs, and says why, when ONNX Runtime does not load (FRAMEWISE_ONNXRUNTIME=%s)',
    async (value, reason) => {
      process.env.FRAMEWISE_ONNXRUNTIME = value;
      const embedder = await createFrameEmbedder({ cacheDir: testCacheDir(), workers: 0 });
      try {
        expect(embedder.engine.name).toBe('tfjs');
        expect(embedder.engine.reason).toMatch(/^engine auto: tfjs, because /);
        expect(embedder.backend!.name).toMatch(/^(tensorflow|wasm|cpu)$/);
        expect(embedder.backend!.reason).toMatch(/^engine auto: tfjs, because /);
        expect(embedder.backend!.reason).toMatch(reason);
        expect(embedder.dim).toBe(1280);
      } finally {
        await embedder.dispose();
      }
      await expect(createFrameEmbedder({ engine: 'onnx', cacheDir: testCacheDir() })).rejects.toThrow(
        OnnxUnavailableError,
      );
    },
  );

  it('auto falls back to tfjs when the backbone has a layer without an ONNX mapping; onnx rejects naming it', async () => {
    const backbone = await unsupportedBackbone(join(root, 'with-ln'));
    const embedder = await createFrameEmbedder({ backbone, cacheDir: join(root, 'cache-ln'), workers: 0 });
    try {
      expect(embedder.engine.name).toBe('tfjs');
      expect(embedder.backend!.reason).toMatch(
        /onnx was refused \(ONNX conversion: layer 'ln' \(LayerNormalization\) has no ONNX mapping/,
      );
      const out = await embedder.embedClips(randomFrames(2, 32, 3), [1, 2, 32, 32, 3]);
      expect(out.length).toBe(2 * 4);
    } finally {
      await embedder.dispose();
    }
    await expect(
      createFrameEmbedder({ backbone, engine: 'onnx', cacheDir: join(root, 'cache-ln') }),
    ).rejects.toThrow(ModelError);
    await expect(
      createFrameEmbedder({ backbone, engine: 'onnx', cacheDir: join(root, 'cache-ln') }),
    ).rejects.toThrow(/layer 'ln' \(LayerNormalization\)/);
  });

  it('tfjs, when asked for, runs tfjs and says so', async () => {
    const embedder = await createFrameEmbedder({ engine: 'tfjs', cacheDir: testCacheDir(), workers: 0 });
    try {
      expect(embedder.engine.name).toBe('tfjs');
      expect(embedder.backend!.reason).toMatch(/^engine tfjs: tfjs; /);
    } finally {
      await embedder.dispose();
    }
  });

  it('rejects an unknown engine before any work', async () => {
    await expect(createFrameEmbedder({ engine: 'torch' as never })).rejects.toThrow(
      /one of 'auto', 'onnx', 'tfjs' for `engine` but received 'torch'/,
    );
  });
});
