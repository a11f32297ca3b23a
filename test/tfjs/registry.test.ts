import { createReadStream, existsSync, mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { selectBackend } from '../../src/tfjs/backend.js';
import { loadBackbone, normalizeFrames } from '../../src/tfjs/registry.js';
import { normalizationParams, parseBackboneSpec } from '../../src/embedding/backbone-spec.js';
import { embedClipsLocal, prepareLocalModel } from '../../src/engines/tfjs/embedder.js';
import { modelToArtifacts, writeArtifacts } from '../../src/tfjs/artifacts.js';
import { maxAbsDiff } from '../model/helpers.js';
import { tempDir } from '../helpers.js';

const root = tempDir('framewise-backbones-');

beforeAll(async () => {
  await selectBackend('auto');
});

describe('loadBackbone(mobilenet_v2)', () => {
  it('builds from nsfwjs without printing, caches atomically, and loads from the cache well under 2 s with the same id and numbers', async () => {
    const cacheDir = join(root, 'cache-a');
    const info = vi.spyOn(console, 'info');
    const cold = await loadBackbone('mobilenet_v2', { cacheDir });
    expect(info).not.toHaveBeenCalled();
    info.mockRestore();
    expect(cold.fromCache).toBe(false);
    expect(cold.id).toMatch(/^mobilenet_v2-[0-9a-f]{12}$/);
    expect([cold.inputSize, cold.dim, cold.normalize]).toEqual([224, 1280, '0..1']);
    expect(cold.layersModel!.inputs[0].shape).toEqual([null, 224, 224, 3]);
    expect(cold.layersModel!.outputs[0].shape).toEqual([null, 1280]);
    const entry = join(cacheDir, 'backbones', cold.id);
    expect(readdirSync(entry).sort()).toEqual(['backbone.json', 'model.json', 'weights.bin']);
    // No temporary folders are left behind.
    expect(readdirSync(join(cacheDir, 'backbones')).filter((f) => f.includes('.tmp'))).toEqual([]);

    const t0 = performance.now();
    const cached = await loadBackbone('mobilenet_v2', { cacheDir });
    const ms = performance.now() - t0;
    expect(cached.fromCache).toBe(true);
    expect(cached.id).toBe(cold.id);
    expect(ms).toBeLessThan(2000);

    const x = tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const a = tf.tidy(() => cold.embed(x).dataSync());
    const b = tf.tidy(() => cached.embed(x).dataSync());
    expect(maxAbsDiff(a, b)).toBe(0);
    x.dispose();
    cold.dispose();
    cached.dispose();
  });

  it('gives the same id from a fresh cache (the id hashes content, not time or place)', async () => {
    const a = await loadBackbone('mobilenet_v2', { cacheDir: join(root, 'cache-a') });
    const b = await loadBackbone('mobilenet_v2', { cacheDir: join(root, 'cache-b') });
    expect(b.fromCache).toBe(false);
    expect(b.id).toBe(a.id);
    a.dispose();
    b.dispose();
  });

  it('rebuilds a damaged cache entry instead of trusting it', async () => {
    const cacheDir = join(root, 'cache-b');
    const first = await loadBackbone('mobilenet_v2', { cacheDir });
    const id = first.id;
    first.dispose();
    truncateSync(join(cacheDir, 'backbones', id, 'weights.bin'), 1000);
    const again = await loadBackbone('mobilenet_v2', { cacheDir });
    expect(again.fromCache).toBe(false);
    expect(again.id).toBe(id);
    again.dispose();
    const fixed = await loadBackbone('mobilenet_v2', { cacheDir });
    expect(fixed.fromCache).toBe(true);
    fixed.dispose();
  });
});

describe('custom backbones', () => {
  let modelDir: string;

  beforeAll(async () => {
    // A tiny CNN: [32, 32, 3] -> conv -> global average pool ([N, 4]) -> dense ([N, 2]).
    const input = tf.input({ shape: [32, 32, 3] });
    const conv = tf.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        name: 'conv',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      })
      .apply(input);
    const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(conv);
    const out = tf.layers.dense({ units: 2, name: 'logits' }).apply(pooled) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    modelDir = join(root, 'tiny');
    await writeArtifacts(modelDir, await modelToArtifacts(model));
    model.dispose();
  });

  it('loads a LayersModel folder cut at `embeddingLayer`, with a stable content id', async () => {
    const spec = {
      name: 'tiny',
      path: modelDir,
      inputSize: 32,
      normalize: '-1..1' as const,
      embeddingLayer: 'pool',
    };
    const a = await loadBackbone(spec);
    expect(a.id).toMatch(/^tiny-[0-9a-f]{12}$/);
    expect(a.dim).toBe(4);
    const b = await loadBackbone({ ...spec, embeddingLayer: undefined });
    expect(b.dim).toBe(2);
    expect(b.id).not.toBe(a.id);
    const c = await loadBackbone(spec);
    expect(c.id).toBe(a.id);
    [a, b, c].forEach((m) => m.dispose());
  });

  it.each([
    [{ inputSize: 64 }, /input shape \[\?, 32, 32, 3\] does not accept \[batch, 64, 64, 3\] frames/],
    [
      { embeddingLayer: 'conv' },
      /the embedding layer 'conv' has shape \[\?, 30, 30, 4\], expected \[batch, D\]/,
    ],
    [{ embeddingLayer: 'nope' }, /no layer named 'nope'/],
  ])('rejects %o with a clear ModelError', async (override, message) => {
    const spec = { name: 'tiny', path: modelDir, inputSize: 32, normalize: '0..1' as const, ...override };
    await expect(loadBackbone(spec)).rejects.toThrow(ModelError);
    await expect(loadBackbone(spec)).rejects.toThrow(message);
  });

  it('loads the same model from a URL (served here by a local HTTP server) with the same id', async () => {
    const server = createServer((req, res) => {
      createReadStream(join(modelDir, (req.url ?? '/').slice(1)))
        .on('error', () => res.writeHead(404).end())
        .pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const spec = { name: 'tiny', inputSize: 32, normalize: '0..1' as const, embeddingLayer: 'pool' };
      const fromUrl = await loadBackbone({ ...spec, url: `http://127.0.0.1:${port}/model.json` });
      const fromPath = await loadBackbone({ ...spec, path: modelDir });
      expect(fromUrl.id).toBe(fromPath.id);
      expect(fromUrl.dim).toBe(4);
      fromUrl.dispose();
      fromPath.dispose();
      await expect(
        loadBackbone({ ...spec, url: `http://127.0.0.1:${port}/missing/model.json` }),
      ).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
  });

  it('loads a hand-written GraphModel (mean over H, W, then MatMul), at a node or at its output', async () => {
    // input [?, 32, 32, 3] -> pooled = Mean(input, axes [1, 2]) [?, 3] -> logits = pooled x W [?, 2].
    const graphDir = join(root, 'graph');
    mkdirSync(graphDir, { recursive: true });
    const node = (name: string, op: string, attr: object, input?: string[]) => ({
      name,
      op,
      attr,
      ...(input ? { input } : {}),
    });
    const dims = (...sizes: number[]) => ({ dim: sizes.map((size) => ({ size: String(size) })) });
    const constant = (name: string, dtype: string, shape: number[]) =>
      node(name, 'Const', {
        dtype: { type: dtype },
        value: { tensor: { dtype, tensorShape: dims(...shape) } },
      });
    const modelJson = {
      format: 'graph-model',
      modelTopology: {
        node: [
          node('input', 'Placeholder', {
            dtype: { type: 'DT_FLOAT' },
            shape: { shape: dims(-1, 32, 32, 3) },
          }),
          constant('axes', 'DT_INT32', [2]),
          node(
            'pooled',
            'Mean',
            { keep_dims: { b: false }, T: { type: 'DT_FLOAT' }, Tidx: { type: 'DT_INT32' } },
            ['input', 'axes'],
          ),
          constant('w', 'DT_FLOAT', [3, 2]),
          node(
            'logits',
            'MatMul',
            { T: { type: 'DT_FLOAT' }, transpose_a: { b: false }, transpose_b: { b: false } },
            ['pooled', 'w'],
          ),
        ],
        library: {},
        versions: { producer: 1 },
      },
      weightsManifest: [
        {
          paths: ['weights.bin'],
          weights: [
            { name: 'axes', shape: [2], dtype: 'int32' },
            { name: 'w', shape: [3, 2], dtype: 'float32' },
          ],
        },
      ],
    };
    writeFileSync(join(graphDir, 'model.json'), JSON.stringify(modelJson));
    const weights = Buffer.concat([
      Buffer.from(Int32Array.from([1, 2]).buffer),
      Buffer.from(Float32Array.from([1, 0, 0, 1, 1, 1]).buffer),
    ]);
    writeFileSync(join(graphDir, 'weights.bin'), weights);

    const spec = { name: 'graph', path: graphDir, inputSize: 32, normalize: '0..1' as const };
    const pooled = await loadBackbone({ ...spec, embeddingLayer: 'pooled' });
    expect([pooled.kind, pooled.dim]).toEqual(['graph', 3]);
    // Through embedClipsLocal (GraphModels are reshaped by hand): uint8 51 -> 0.2 everywhere.
    const frames = new Uint8Array(2 * 32 * 32 * 3).fill(51);
    const out = await embedClipsLocal(prepareLocalModel(pooled), frames, [1, 2, 32, 32, 3]);
    expect(Array.from(out).map((v) => +v.toFixed(5))).toEqual([0.2, 0.2, 0.2, 0.2, 0.2, 0.2]);
    const logits = await loadBackbone(spec);
    expect(logits.dim).toBe(2);
    // [0.2, 0.2, 0.2] x [[1, 0], [0, 1], [1, 1]] = [0.4, 0.4]
    const y = await embedClipsLocal(
      prepareLocalModel(logits),
      frames.subarray(0, 32 * 32 * 3),
      [1, 1, 32, 32, 3],
    );
    expect(Array.from(y).map((v) => +v.toFixed(5))).toEqual([0.4, 0.4]);
    expect(logits.id).not.toBe(pooled.id);
    pooled.dispose();
    logits.dispose();
    await expect(loadBackbone({ ...spec, inputSize: 64 })).rejects.toThrow(
      /input shape \[\?, 32, 32, 3\] does not accept/,
    );
  });

  it('rejects a folder without a model.json', async () => {
    await expect(
      loadBackbone({ path: join(root, 'missing'), inputSize: 32, normalize: '0..1' }),
    ).rejects.toThrow(/cannot read a tfjs model.json/);
  });

  it.each([
    ['resnet', /one of 'mobilenet_v2', 'inception_v3' or a custom backbone object for `backbone`/],
    [{ inputSize: 32, normalize: '0..1' }, /exactly one of `backbone.url` and `backbone.path`/],
    [{ path: 'x', inputSize: 0, normalize: '0..1' }, /positive integer for `backbone.inputSize`/],
    [{ path: 'x', inputSize: 32, normalize: '0..255' }, /for `backbone.normalize`/],
    [{ path: 'x', inputSize: 32, normalize: { mean: [0.5, 0.5], std: 0.2 } }, /`backbone.normalize.mean`/],
    [
      { path: 'x', inputSize: 32, normalize: { mean: 0.5, std: 0 } },
      /positive number for `backbone.normalize.std`/,
    ],
  ])('parseBackboneSpec rejects %o', (spec, message) => {
    expect(() => parseBackboneSpec('backbone', spec)).toThrow(TypeError);
    expect(() => parseBackboneSpec('backbone', spec)).toThrow(message);
  });
});

describe('normalisation', () => {
  it.each([
    ['0..1', [0, 255, 51], [0, 1, 0.2]],
    ['-1..1', [0, 255, 51], [-1, 1, -0.6]],
  ] as const)('normalizeFrames(%s) maps uint8 values', (normalize, input, expected) => {
    const y = tf.tidy(() =>
      normalizeFrames(
        tf.tensor(
          input.flatMap((v) => [v, v, v]),
          [3, 3],
          'int32',
        ),
        normalize,
      ).dataSync(),
    );
    expected.forEach((v, i) => expect(y[i * 3]).toBeCloseTo(v, 6));
  });

  it('{mean, std} is on the [0, 1] scale, per channel', () => {
    const { scale, offset } = normalizationParams({ mean: [0.5, 0.25, 0], std: [0.5, 0.25, 1] });
    // y = (x / 255 - mean) / std
    expect(255 * scale[0] + offset[0]).toBeCloseTo(1, 6);
    expect(offset[1]).toBeCloseTo(-1, 6);
    expect(255 * scale[2] + offset[2]).toBeCloseTo(1, 6);
  });
});

describe('inception_v3', () => {
  it('loads from nsfwjs cut at its pooled 2048-d layer, 299 x 299', async () => {
    const cacheDir = join(root, 'cache-inception');
    const b = await loadBackbone('inception_v3', { cacheDir });
    expect([b.inputSize, b.dim]).toEqual([299, 2048]);
    expect(b.id).toMatch(/^inception_v3-[0-9a-f]{12}$/);
    const y = tf.tidy(() => b.embed(tf.zeros([1, 299, 299, 3])));
    expect(y.shape).toEqual([1, 2048]);
    y.dispose();
    b.dispose();
    expect(existsSync(join(cacheDir, 'backbones', b.id, 'model.json'))).toBe(true);
  });
});
