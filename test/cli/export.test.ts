import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractClips, planClips, probe } from '../../src/ingest/index.js';
import { loadClassifier } from '../../src/tasks/index.js';
import { layersModelFromArtifacts, readArtifacts } from '../../src/tfjs/artifacts.js';
import { selectBackend } from '../../src/tfjs/backend.js';
import '../../src/model/layers.js';
import { maxAbsDiff, testCacheDir } from '../model/helpers.js';
import { assertBuilt, ROOT, runCli } from './helpers.js';
import { argmaxRows, tempDir } from '../helpers.js';

const MODEL = join(ROOT, 'samples', 'model');
const VIDEOS = ['forward/zoom-pal.mp4', 'reversed/grow-disk-smpte.mp4', 'reversed/fill-left-rgb.mp4'].map(
  (v) => join(ROOT, 'samples', v),
);
const work = tempDir('framewise-cli-export-');

beforeAll(async () => {
  assertBuilt();
  await selectBackend('wasm'); // the tfjs export runs 48 frames through the backbone here
});

/** The frames `classify` runs on each sample video (the model's sampling, size 224, cover): uint8 [N, 16, 224, 224, 3]. */
async function classifyFrames(): Promise<Uint8Array> {
  const clips = [];
  for (const video of VIDEOS) {
    const info = await probe(video);
    clips.push(
      ...(await extractClips(video, planClips(info, { kind: 'uniform', frames: 16 }), {
        size: 224,
        probe: info,
      })),
    );
  }
  const out = new Uint8Array(clips.reduce((n, c) => n + c.data.length, 0));
  clips.forEach((c, i) => out.set(c.data, i * c.data.length));
  return out;
}

describe('framewise export', () => {
  it('writes an ONNX file and a tfjs model that give the same probs within 1e-4, and the labels classify gives', async () => {
    const onnxFile = join(work, 'arrow.onnx');
    const tfjsDir = join(work, 'arrow-tfjs');
    const a = await runCli(['export', MODEL, '--out', onnxFile], { FRAMEWISE_CACHE: testCacheDir() });
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(
      /^wrote .*arrow\.onnx .*frames uint8 \[N, T, 224, 224, 3\], mask bool \[N, T\] -> probs \(clip mode, forward, reversed\)/,
    );
    const b = await runCli(['export', MODEL, '--out', tfjsDir], { FRAMEWISE_CACHE: testCacheDir() });
    expect(b.code).toBe(0);

    const frames = await classifyFrames();
    const n = VIDEOS.length;
    const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(onnxFile)));
    let onnxProbs: Float32Array;
    try {
      const mask = new ort.Tensor('bool', new Uint8Array(n * 16).fill(1), [n, 16]); // every frame is real
      onnxProbs = (await session.run({ frames: new ort.Tensor('uint8', frames, [n, 16, 224, 224, 3]), mask }))
        .probs.data as Float32Array;
    } finally {
      await session.release();
    }
    const model = await layersModelFromArtifacts(await readArtifacts(tfjsDir));
    let tfjsProbs: Float32Array;
    try {
      tfjsProbs = tf.tidy(
        () =>
          (
            model.predict(tf.tensor(frames, [n, 16, 224, 224, 3], 'int32').toFloat()) as tf.Tensor
          ).dataSync() as Float32Array,
      );
    } finally {
      model.dispose();
    }
    expect(onnxProbs.length).toBe(n * 2);
    expect(maxAbsDiff(onnxProbs, tfjsProbs)).toBeLessThan(1e-4);

    const classifier = await loadClassifier(MODEL, { cache: false });
    try {
      const labels: string[] = [];
      const probs: number[] = [];
      for await (const r of classifier.classify(VIDEOS)) {
        if ('error' in r) throw new Error(r.error.message);
        labels.push(r.label);
        probs.push(...r.probs);
      }
      expect(argmaxRows(onnxProbs, 2).map((c) => ['forward', 'reversed'][c])).toEqual(labels);
      expect(maxAbsDiff(onnxProbs, probs)).toBeLessThan(1e-4);
    } finally {
      await classifier.close();
    }
  });

  it('--no-mask writes a graph that takes frames only, and is for the ONNX format', async () => {
    const file = join(work, 'no-mask.onnx');
    const a = await runCli(['export', MODEL, '--out', file, '--no-mask', '--frames', '4'], {
      FRAMEWISE_CACHE: testCacheDir(),
    });
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/frames uint8 \[N, 4, 224, 224, 3\] \(all-zero frames are padding\) -> probs/);
    const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(file)));
    try {
      expect(session.inputNames).toEqual(['frames']);
    } finally {
      await session.release();
    }
    const b = await runCli(['export', MODEL, '--out', join(work, 'no-mask-tfjs'), '--no-mask']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/`--no-mask` is for `--format onnx`/);
    const c = await runCli(['export', MODEL, '--out', join(work, 'x.onnx'), '--format', 'tfjs']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/`--format tfjs` writes a folder, not .*x\.onnx/);
    expect(existsSync(join(work, 'x.onnx'))).toBe(false);
  });

  it('refuses to replace what it did not write, and an existing output without --force', async () => {
    const foreign = join(work, 'notes.onnx.d');
    writeFileSync(join(work, 'taken.onnx'), 'x');
    const noForce = await runCli(['export', MODEL, '--out', join(work, 'taken.onnx')]);
    expect(noForce.code).toBe(2);
    expect(noForce.stderr).toMatch(/exists; pass --force to replace it/);
    // A file named .onnx is not framewise's by its name: its content decides.
    const theirs = await runCli(['export', MODEL, '--out', join(work, 'taken.onnx'), '--force']);
    expect(theirs.code).toBe(2);
    expect(theirs.stderr).toMatch(/is not a framewise onnx export; not replacing it/);
    expect(readFileSync(join(work, 'taken.onnx'), 'utf8')).toBe('x');
    writeFileSync(foreign, 'not a folder');
    const notOurs = await runCli(['export', MODEL, '--out', foreign, '--force']);
    expect(notOurs.code).toBe(2);
    expect(notOurs.stderr).toMatch(/is not a framewise tfjs export; not replacing it/);
    expect(readFileSync(foreign, 'utf8')).toBe('not a folder');
  });
});
