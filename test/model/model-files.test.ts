import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { loadBackbone, type LoadedBackbone } from '../../src/tfjs/registry.js';
import type { HeadClassifier } from '../../src/model/types.js';
import { embedClipsLocal, prepareLocalModel } from '../../src/engines/tfjs/embedder.js';
import { readArtifacts } from '../../src/tfjs/artifacts.js';
import { checkCompatible, exportEndToEnd, loadModel, saveModel } from '../../src/model/model-files.js';
import { trainHead } from '../../src/model/train.js';
import { maxAbsDiff, randomFrames, testCacheDir } from './helpers.js';
import { tempDir } from '../helpers.js';

const T = 4;
const dir = tempDir('framewise-model-files-');
let backbone: LoadedBackbone;

beforeAll(async () => {
  backbone = await loadBackbone('mobilenet_v2', { cacheDir: testCacheDir() });
});

afterAll(() => {
  backbone?.dispose();
});

const memo = new Map<string, { frames: Uint8Array; embeddings: Float32Array }>();

/** Random uint8 clips [n, T, 224, 224, 3] and their real embeddings (computed once per n and seed). */
async function clips(n: number, seed: number) {
  const key = `${n}/${seed}`;
  if (!memo.has(key)) memo.set(key, await makeClips(n, seed));
  const { frames, embeddings } = memo.get(key)!;
  return { frames: new Uint8Array(frames), embeddings: new Float32Array(embeddings) };
}

async function makeClips(n: number, seed: number) {
  const frames = randomFrames(n * T, 224, seed);
  const embeddings = await embedClipsLocal(prepareLocalModel(backbone), frames, [n, T, 224, 224, 3]);
  return { frames, embeddings };
}

async function trained(mode: 'clip' | 'frame' = 'clip'): Promise<HeadClassifier> {
  const { embeddings } = await clips(4, 1);
  const labels =
    mode === 'clip' ? ['a', 'b', 'a', 'b'] : Array.from({ length: 4 * T }, (_, i) => (i % 2 ? 'a' : 'b'));
  return trainHead(
    { embeddings, shape: [4, T, 1280], labels },
    {
      head: { mode, units: 8 },
      epochs: 2,
      valSplit: 0,
      backbone,
      sampling: { kind: 'uniform', frames: T },
    },
  );
}

describe('saveModel() / loadModel()', () => {
  it('round-trips a classifier: the same probabilities, and a complete framewise.json', async () => {
    const head = await trained();
    const out = join(dir, 'clip-model');
    const info = await saveModel(out, head, { extra: { fit: 'cover' } });
    const json = JSON.parse(readFileSync(join(out, 'framewise.json'), 'utf8'));
    expect(json).toEqual(info);
    expect(json).toMatchObject({
      format: 'framewise-model',
      labels: ['a', 'b'],
      mode: 'clip',
      head: { type: 'lstm', mode: 'clip', units: 8, dropout: 0.2 },
      frames: T,
      size: 224,
      sampling: { kind: 'uniform', frames: T },
      backbone: 'mobilenet_v2',
      backboneId: backbone.id,
      normalize: '0..1',
      dim: 1280,
      fit: 'cover',
    });
    expect(json.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(json.metrics.epochs).toBe(2);
    const loaded = await loadModel(out, { backboneId: backbone.id });
    const { embeddings } = await clips(2, 5);
    const mask = [1, 1, 1, 0, 1, 1, 0, 0];
    const a = await head.predict(embeddings, [2, T, 1280], mask);
    const b = await loaded.predict(embeddings, [2, T, 1280], mask);
    expect(maxAbsDiff(a, b)).toBe(0);
    await head.dispose();
    await loaded.dispose();
  });

  it('writes plain tfjs LayersModel files that tf.loadLayersModel reads', async () => {
    const head = await trained('frame');
    const out = join(dir, 'frame-model');
    await saveModel(out, head);
    const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    const model = await tf.loadLayersModel(tf.io.fromMemory(await readArtifacts(out)));
    expect(model.outputs[0].shape).toEqual([null, null, 2]);
    model.dispose();
    await head.dispose();
  });

  it('refuses a model trained on another backbone, naming both', async () => {
    const head = await trained();
    const out = join(dir, 'other-backbone');
    await saveModel(out, head);
    await head.dispose();
    await expect(loadModel(out, { backboneId: 'inception_v3-0123456789ab' })).rejects.toThrow(ModelError);
    await expect(loadModel(out, { backboneId: 'inception_v3-0123456789ab' })).rejects.toThrow(
      new RegExp(
        `trained on backbone '${backbone.id}', but the embeddings come from 'inception_v3-0123456789ab'`,
      ),
    );
    expect(() =>
      checkCompatible({ backboneId: backbone.id, dim: 1280 }, { id: backbone.id, dim: 2048 }),
    ).toThrow(/1280-d/);
  });

  it('rejects a folder that is not a framewise model, and a newer format', async () => {
    await expect(loadModel(join(dir, 'nothing-here'))).rejects.toThrow(/not a framewise model folder/);
    const head = await trained();
    const out = join(dir, 'future');
    await saveModel(out, head);
    await head.dispose();
    const file = join(out, 'framewise.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), formatVersion: 2 }));
    await expect(loadModel(out)).rejects.toThrow(/format version 2/);
  });

  it("refuses a framewise.json whose labels do not match the head's outputs (they would shift)", async () => {
    const head = await trained();
    const out = join(dir, 'labels');
    await saveModel(out, head);
    await head.dispose();
    const file = join(out, 'framewise.json');
    const info = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...info, labels: [...info.labels, 'extra'] }));
    await expect(loadModel(out)).rejects.toThrow(ModelError);
    await expect(loadModel(out)).rejects.toThrow(
      new RegExp(
        `gives ${info.labels.length} scores but framewise.json lists ${info.labels.length + 1} labels`,
      ),
    );
    writeFileSync(file, JSON.stringify(info));
    await (await loadModel(out)).dispose();
  });

  it('saveModel() needs a backbone recorded or given', async () => {
    const { embeddings } = await clips(2, 2);
    const head = await trainHead(
      { embeddings, shape: [2, T, 1280], labels: ['a', 'b'] },
      { head: { units: 4 }, epochs: 1 },
    );
    await expect(saveModel(join(dir, 'nobackbone'), head)).rejects.toThrow(/pass `backbone`/);
    const info = await saveModel(join(dir, 'withbackbone'), head, { backbone });
    expect(info.backboneId).toBe(backbone.id);
    await head.dispose();
  });

  it('leaves tf.memory().numTensors unchanged after classifying twice', async () => {
    const head = await trained();
    const out = join(dir, 'leak');
    await saveModel(out, head);
    await head.dispose();
    const loaded = await loadModel(out);
    const { embeddings } = await clips(2, 3);
    await loaded.predict(embeddings, [2, T, 1280]);
    const before = tf.memory().numTensors;
    await loaded.predict(embeddings, [2, T, 1280]);
    await loaded.predict(embeddings, [2, T, 1280], [1, 1, 0, 0, 1, 1, 1, 1]);
    expect(tf.memory().numTensors).toBe(before);
    await loaded.dispose();
  });
});

describe('exportEndToEnd()', () => {
  it('writes one LayersModel [T, S, S, 3] -> TimeDistributed(backbone) -> head whose outputs match the embedding path within 1e-4', async () => {
    const head = await trained();
    const modelDir = join(dir, 'e2e-src');
    await saveModel(modelDir, head);
    const outDir = join(dir, 'e2e-out');
    const info = await exportEndToEnd(modelDir, outDir, { cacheDir: testCacheDir() });
    expect(info.endToEnd).toBe(true);
    const whole = await tf.loadLayersModel(tf.io.fromMemory(await readArtifacts(outDir)));
    expect(whole.inputs[0].shape).toEqual([null, null, 224, 224, 3]);
    expect(JSON.stringify(whole.toJSON(null, false))).toContain('FramewiseTimeDistributed');
    // Two clips; the second has its last frame padded (all zero) and masked.
    const { frames } = await clips(2, 4);
    const frameSize = 224 * 224 * 3;
    frames.fill(0, 7 * frameSize, 8 * frameSize);
    const { embeddings } = {
      embeddings: await embedClipsLocal(prepareLocalModel(backbone), frames, [2, T, 224, 224, 3]),
    };
    const expected = await head.predict(embeddings, [2, T, 1280], [1, 1, 1, 1, 1, 1, 1, 0]);
    const y = tf.tidy(() => whole.predict(tf.tensor(frames, [2, T, 224, 224, 3], 'float32')) as tf.Tensor);
    expect(y.shape).toEqual([2, 2]);
    expect(maxAbsDiff(await y.data(), expected)).toBeLessThan(1e-4);
    y.dispose();
    whole.dispose();
    await head.dispose();
  });
});
