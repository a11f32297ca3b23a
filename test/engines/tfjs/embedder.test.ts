import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShapeError } from '../../../src/errors.js';
import { loadBackbone, normalizeFrames, type LoadedBackbone } from '../../../src/tfjs/registry.js';
import { checkClipShape } from '../../../src/embedding/frame-embedder.js';
import {
  createEmbedder,
  embedClipsLocal,
  prepareLocalModel,
  type FrameEmbedder,
} from '../../../src/engines/tfjs/embedder.js';
import { maxAbsDiff, randomFrames, testCacheDir } from '../../model/helpers.js';

const S = 224;

const frames = (n: number, seed: number): Uint8Array => randomFrames(n, S, seed);

describe('embedClipsLocal()', () => {
  let backbone: LoadedBackbone;

  beforeAll(async () => {
    backbone = await loadBackbone('mobilenet_v2', { cacheDir: testCacheDir() });
  });

  afterAll(() => backbone?.dispose());

  it('gives [B, T, D] embeddings equal to the backbone on each normalised frame alone', async () => {
    const data = frames(6, 1); // 2 clips x 3 frames
    // maxBatchFrames 4: the two clips go through in separate steps, which must not matter.
    const out = await embedClipsLocal(prepareLocalModel(backbone, { maxBatchFrames: 4 }), data, [
      2,
      3,
      S,
      S,
      3,
    ]);
    expect(out.length).toBe(2 * 3 * 1280);
    for (const k of [0, 4]) {
      const alone = tf.tidy(() => {
        const x = tf.tensor4d(Float32Array.from(data.subarray(k * S * S * 3, (k + 1) * S * S * 3)), [
          1,
          S,
          S,
          3,
        ]);
        return backbone.embed(normalizeFrames(x, '0..1')).dataSync();
      });
      expect(maxAbsDiff(alone, out.subarray(k * 1280, (k + 1) * 1280))).toBeLessThan(1e-5);
    }
  });

  it('leaves tf.memory().numTensors unchanged after embedding twice', async () => {
    const model = prepareLocalModel(backbone);
    const data = frames(2, 2);
    await embedClipsLocal(model, data, [1, 2, S, S, 3]);
    const before = tf.memory().numTensors;
    await embedClipsLocal(model, data, [1, 2, S, S, 3]);
    await embedClipsLocal(model, data, [2, 1, S, S, 3]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects when aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(
      embedClipsLocal(prepareLocalModel(backbone), frames(1, 3), [1, 1, S, S, 3], {
        signal: controller.signal,
      }),
    ).rejects.toThrow('cancelled');
  });
});

describe('checkClipShape()', () => {
  it.each([
    [[1, 2, 112, 112, 3], 'embedClips: expected shape [?, ?, 224, 224, 3] but received [1, 2, 112, 112, 3]'],
    [[1, 2, 224, 224, 1], 'expected shape [?, ?, 224, 224, 3]'],
    [[1, 0, 224, 224, 3], 'received [1, 0, 224, 224, 3]'],
  ])('rejects shape %j', (shape, message) => {
    const data = new Uint8Array(
      Math.max(
        1,
        shape.reduce((a, b) => a * b, 1),
      ),
    );
    expect(() => checkClipShape(data, shape, 224)).toThrow(ShapeError);
    expect(() => checkClipShape(data, shape, 224)).toThrow(message);
  });

  it('rejects a buffer whose length does not match the shape (the shape matters, not the bytes)', () => {
    expect(() => checkClipShape(new Uint8Array(S * S * 3), [1, 2, S, S, 3], S)).toThrow(/data length/);
  });
});

describe('createEmbedder()', () => {
  let embedder: FrameEmbedder;

  beforeAll(async () => {
    embedder = await createEmbedder({ cacheDir: testCacheDir(), workers: 0 });
  });

  afterAll(async () => {
    await embedder?.dispose();
  });

  it('describes its backbone and backend', () => {
    expect(embedder.backboneId).toMatch(/^mobilenet_v2-[0-9a-f]{12}$/);
    expect([embedder.inputSize, embedder.dim]).toEqual([224, 1280]);
    expect(embedder.backend!.name).toMatch(/^(tensorflow|wasm|cpu)$/);
    expect(embedder.backend!.reason.length).toBeGreaterThan(0);
    expect(embedder.backbone).toMatchObject({
      id: embedder.backboneId,
      name: 'mobilenet_v2',
      inputSize: 224,
      dim: 1280,
      normalize: '0..1',
    });
  });

  it('embeds packed uint8 clips to float32 [B, T, D]', async () => {
    const out = await embedder.embedClips(frames(2, 4), [1, 2, S, S, 3]);
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(2 * 1280);
    expect(out.some((v) => v > 0)).toBe(true);
  });

  it('rejects a wrong shape with a ShapeError', async () => {
    await expect(embedder.embedClips(frames(1, 5), [1, 1, 112, 112, 3] as never)).rejects.toThrow(ShapeError);
  });

  it.each([
    [{ backbone: 'vgg' }, /for `backbone`/],
    [{ backend: 'gpu' }, /for `backend`/],
    [{ maxBatchFrames: 0 }, /`maxBatchFrames`/],
  ])('rejects options %o', async (options, message) => {
    await expect(createEmbedder(options as never)).rejects.toThrow(message);
  });
});
