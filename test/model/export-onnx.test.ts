import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx, exportWholeModel } from '../../src/model/export-onnx.js';
import { modelToArtifacts } from '../../src/tfjs/artifacts.js';
import { loadBackbone, normalizeFrames, type LoadedBackbone } from '../../src/tfjs/registry.js';
import { buildHead } from '../../src/model/heads.js';
import type { HeadType } from '../../src/model/types.js';
import { loadModel } from '../../src/model/model-files.js';
import { tfClassifier } from '../../src/model/classifier.js';
import { fixture } from '../fixtures.js';
import { maxAbsDiff, realFrames, seedWeights, testCacheDir } from './helpers.js';
import { argmaxRows, tempDir } from '../helpers.js';

const S = 224;
let backbone: LoadedBackbone;
const root = tempDir('framewise-onnx-export-');
/** 2 clips x 3 real frames, and the tfjs embeddings of them [2, 3, D]. */
let frames: Uint8Array;
let embeddings: tf.Tensor3D;

beforeAll(async () => {
  backbone = await loadBackbone('mobilenet_v2', { cacheDir: testCacheDir() });
  const videos = readdirSync(fixture('arrow/forward'))
    .sort()
    .filter((v) => !v.startsWith('fade'));
  frames = new Uint8Array(6 * S * S * 3);
  frames.set(realFrames(`arrow/forward/${videos[0]}`, 3, 6), 0);
  frames.set(realFrames(`arrow/forward/${videos[1]}`, 3, 6), 3 * S * S * 3);
  embeddings = tf.tidy(
    () =>
      tf.reshape(
        backbone.embed(normalizeFrames(tf.tensor4d(frames, [6, S, S, 3], 'int32'), '0..1')),
        [2, 3, 1280],
      ) as tf.Tensor3D,
  );
});
afterAll(() => {
  embeddings?.dispose();
  backbone?.dispose();
});

/** Runs an export; `mask` (1: a real frame) is fed when given, all-true when the graph takes one and none is given. */
async function runOnnx(
  bytes: Uint8Array,
  input: Uint8Array,
  shape: number[],
  mask?: number[],
): Promise<{ data: Float32Array; dims: readonly number[]; inputs: readonly string[] }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const feeds: Record<string, ort.Tensor> = { frames: new ort.Tensor('uint8', input, shape) };
    if (session.inputNames.includes('mask'))
      feeds.mask = new ort.Tensor(
        'bool',
        Uint8Array.from(mask ?? Array<number>(shape[0] * shape[1]).fill(1)),
        shape.slice(0, 2),
      );
    const out = await session.run(feeds);
    return { data: out.probs.data as Float32Array, dims: out.probs.dims, inputs: session.inputNames };
  } finally {
    await session.release();
  }
}

/** Seeded head weights with a wide spread, so the probabilities are far from uniform. */
const seeded = (model: tf.LayersModel, seed: number): void =>
  seedWeights(model, seed, (rand) => (rand() - 0.5) * 1.5);

describe('exportWholeModel()', () => {
  it.each<[HeadType, 'clip' | 'frame']>([
    ['lstm', 'clip'],
    ['lstm', 'frame'],
    ['gru', 'clip'],
    ['bilstm', 'clip'],
    ['bilstm', 'frame'],
    ['mean', 'clip'],
  ])(
    'gives the probs of the tfjs backbone + %s head (%s mode) within 1e-4 on real frames',
    async (type, mode) => {
      const head = buildHead({ type, mode, units: 6, dropout: 0 } as never, { dim: 1280, classes: 3 }, 1);
      try {
        seeded(head, 9);
        const bytes = await exportWholeModel({
          backbone: await modelToArtifacts(backbone.layersModel!),
          inputSize: S,
          normalize: '0..1',
          head: await modelToArtifacts(head),
          mode,
        });
        const want = tf.tidy(() => (head.predict(embeddings) as tf.Tensor).dataSync());
        const got = await runOnnx(bytes, frames, [2, 3, S, S, 3]);
        expect(got.dims).toEqual(mode === 'clip' ? [2, 3] : [2, 3, 3]);
        expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(0.05); // not uniform
        expect(maxAbsDiff(got.data, want)).toBeLessThan(1e-4);
      } finally {
        head.dispose();
      }
    },
  );

  it.each<[HeadType, 'clip' | 'frame']>([
    ['lstm', 'clip'],
    ['lstm', 'frame'],
    ['gru', 'clip'],
    ['gru', 'frame'],
    ['bilstm', 'frame'],
    ['mean', 'clip'],
  ])(
    'uses the mask input: the probs of the tfjs %s head (%s mode) on the frames it keeps, within 1e-4',
    async (type, mode) => {
      const head = buildHead({ type, mode, units: 6, dropout: 0 } as never, { dim: 1280, classes: 3 }, 3);
      try {
        seeded(head, 5);
        const bytes = await exportWholeModel({
          backbone: await modelToArtifacts(backbone.layersModel!),
          inputSize: S,
          normalize: '0..1',
          head: await modelToArtifacts(head),
          mode,
        });
        // The frames are all real (none is all-zero): only the mask says the last one or two of a clip are padding.
        const masks = [
          [1, 1, 0, 1, 1, 1],
          [1, 0, 0, 1, 1, 0],
        ];
        const got = await Promise.all(masks.map((mask) => runOnnx(bytes, frames, [2, 3, S, S, 3], mask)));
        expect(got[0].inputs).toEqual(['frames', 'mask']);
        masks.forEach((mask, m) => {
          // tfjs: the masked frames' embeddings are zero, which the head's Masking layer skips, as in `classify`.
          const want = tf.tidy(() =>
            (head.predict(tf.mul(embeddings, tf.tensor3d(mask, [2, 3, 1]))) as tf.Tensor).dataSync(),
          );
          // Frame mode: only the kept frames' probs mean anything.
          const kept = (p: ArrayLike<number>) =>
            mode === 'clip'
              ? Array.from(p)
              : mask.flatMap((real, f) => (real ? Array.from(p).slice(f * 3, f * 3 + 3) : []));
          expect(maxAbsDiff(kept(got[m].data), kept(want))).toBeLessThan(1e-4);
        });
        // The mask is what decides: the other mask gives other probs. In frame mode, on the frames both masks keep, only a
        // backward direction sees where the clip ends (a forward head's frame t reads frames 0..t alone).
        const both = masks[0].map((real, f) => real && masks[1][f]);
        const shared = (p: ArrayLike<number>) =>
          mode === 'clip'
            ? Array.from(p)
            : both.flatMap((real, f) => (real ? Array.from(p).slice(f * 3, f * 3 + 3) : []));
        if (mode === 'clip' || type === 'bilstm')
          expect(maxAbsDiff(shared(got[0].data), shared(got[1].data))).toBeGreaterThan(1e-3);
        else expect(maxAbsDiff(shared(got[0].data), shared(got[1].data))).toBeLessThan(1e-6);
      } finally {
        head.dispose();
      }
    },
  );

  it('without the mask input, masks all-zero (padded) frames at the end as the tfjs head does (clip mode)', async () => {
    const head = buildHead(
      { type: 'lstm', mode: 'clip', units: 6, dropout: 0 } as never,
      { dim: 1280, classes: 3 },
      2,
    );
    try {
      seeded(head, 4);
      const bytes = await exportWholeModel({
        backbone: await modelToArtifacts(backbone.layersModel!),
        inputSize: S,
        normalize: '0..1',
        head: await modelToArtifacts(head),
        mode: 'clip',
        mask: false,
      });
      // The second clip's last frame is padding: zero frames, and zero embeddings for tfjs.
      const padded = frames.slice();
      padded.fill(0, 5 * S * S * 3);
      const want = tf.tidy(() => {
        const keep = tf.tensor3d([1, 1, 1, 1, 1, 0], [2, 3, 1]);
        return (head.predict(tf.mul(embeddings, keep)) as tf.Tensor).dataSync();
      });
      const got = await runOnnx(bytes, padded, [2, 3, S, S, 3]);
      expect(got.inputs).toEqual(['frames']);
      expect(maxAbsDiff(got.data, want)).toBeLessThan(1e-4);
    } finally {
      head.dispose();
    }
  });
});

describe('exportOnnx()', () => {
  it.each<[string, unknown, RegExp]>([
    [
      'a mask that is not a boolean',
      { mask: 'yes' },
      /Expected a boolean for `options\.mask` but received 'yes'/,
    ],
    [
      'frames that are not a positive integer',
      { frames: 0 },
      /Expected a positive integer for `options\.frames` but received 0/,
    ],
  ])('rejects %s before reading the model', async (_, options, message) => {
    await expect(exportOnnx('no/such/model', join(root, 'x.onnx'), options as never)).rejects.toThrow(
      message,
    );
  });

  it('exports samples/model: the same probs as the model on tfjs, and the same labels', async () => {
    const modelDir = join(import.meta.dirname, '..', '..', 'samples', 'model');
    const file = join(root, 'samples.onnx');
    const result = await exportOnnx(modelDir, file, { cacheDir: testCacheDir() });
    expect(result).toMatchObject({ file, mode: 'clip', labels: ['forward', 'reversed'] });
    const head = await loadModel(modelDir);
    try {
      const want = tf.tidy(() => (tfClassifier(head).model.predict(embeddings) as tf.Tensor).dataSync());
      const { readFileSync } = await import('node:fs');
      const got = await runOnnx(new Uint8Array(readFileSync(file)), frames, [2, 3, S, S, 3]);
      expect(maxAbsDiff(got.data, want)).toBeLessThan(1e-4);
      expect(argmaxRows(got.data, 2)).toEqual(argmaxRows(want, 2));
    } finally {
      await head.dispose();
    }
  });
});
