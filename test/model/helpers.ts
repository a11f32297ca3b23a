/**
 * Shared by the model tests: one backbone cache folder for the whole run, a tiny ffmpeg
 * rawvideo reader for fixture frames, and embeddings of fixture frames cached on disk
 * (keyed by backbone id) so the real backbone runs over each frame once per machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { loadBackbone } from '../../src/tfjs/registry.js';
import { embedClipsLocal, prepareLocalModel } from '../../src/engines/tfjs/embedder.js';
import { fixture, fixturesDir } from '../fixtures.js';

/** One backbone cache for every model test file: `FRAMEWISE_CACHE`, else a folder in tmp. */
export function testCacheDir(): string {
  return process.env.FRAMEWISE_CACHE || join(tmpdir(), 'framewise-test-cache');
}

/**
 * The backbone under TimeDistributed in this thread (`embedClipsLocal`), without workers or
 * folding, so model tests see exactly the registry backbone.
 */
export interface TestEmbedder {
  backboneId: string;
  inputSize: number;
  dim: number;
  embedClips(data: Uint8Array, shape: [number, number, number, number, 3]): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export async function localEmbedder(backbone = 'mobilenet_v2'): Promise<TestEmbedder> {
  const loaded = await loadBackbone(backbone, { cacheDir: testCacheDir() });
  const model = prepareLocalModel(loaded);
  return {
    backboneId: loaded.id,
    inputSize: loaded.inputSize,
    dim: loaded.dim,
    embedClips: (data, shape) => embedClipsLocal(model, data, shape),
    dispose: async () => loaded.dispose(),
  };
}

/** Every frame of a video, stretched to size x size, as RGB bytes. */
export function readAllFrames(file: string, size: number): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      resolveBinaries().ffmpeg,
      [
        '-hide_banner',
        '-nostdin',
        '-loglevel',
        'error',
        '-i',
        file,
        '-vf',
        `scale=${size}:${size}`,
        '-f',
        'rawvideo',
        '-pix_fmt',
        'rgb24',
        '-',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`ffmpeg failed on ${file}: ${stderr}`));
      const all = Buffer.concat(chunks);
      const frameSize = size * size * 3;
      const frames: Uint8Array[] = [];
      for (let o = 0; o + frameSize <= all.length; o += frameSize)
        frames.push(new Uint8Array(all.subarray(o, o + frameSize)));
      resolve(frames);
    });
  });
}

/** Evenly spaced indices: n of `count`, first and last included. */
export function evenIndices(count: number, n: number): number[] {
  if (n === 1) return [0];
  return Array.from({ length: n }, (_, i) => Math.round((i * (count - 1)) / (n - 1)));
}

/** Packs frames into one [B*T*S*S*3] buffer. */
export function pack(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let o = 0;
  for (const f of frames) {
    out.set(f, o);
    o += f.length;
  }
  return out;
}

/**
 * Embeddings of the chosen frames of each video ([frames.length, D] per video), cached on
 * disk under the fixtures folder by `key` (which must name the frame choice), backbone id and
 * files, so later runs skip the CNN.
 */
export async function cachedVideoEmbeddings(
  embedder: TestEmbedder,
  key: string,
  videos: { file: string; pick: (frameCount: number) => number[] }[],
): Promise<{ embeddings: Float32Array[]; frameCounts: number[]; picks: number[][] }> {
  const dir = join(fixturesDir(), '.embeddings');
  mkdirSync(dir, { recursive: true });
  const digest = createHash('sha256')
    .update(
      JSON.stringify({
        id: embedder.backboneId,
        // Size and mtime too: a regenerated fixture set must not reuse old embeddings.
        files: videos.map((v) => [v.file, statSync(v.file).size, statSync(v.file).mtimeMs]),
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const base = join(dir, `${key}-${embedder.backboneId}-${digest}`);
  if (existsSync(`${base}.json`)) {
    const meta = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as {
      frameCounts: number[];
      picks: number[][];
    };
    const flat = new Float32Array(new Uint8Array(readFileSync(`${base}.bin`)).buffer);
    const embeddings: Float32Array[] = [];
    let o = 0;
    for (const p of meta.picks) {
      embeddings.push(flat.slice(o, o + p.length * embedder.dim));
      o += p.length * embedder.dim;
    }
    return { embeddings, ...meta };
  }
  const embeddings: Float32Array[] = [];
  const frameCounts: number[] = [];
  const picks: number[][] = [];
  for (const video of videos) {
    const frames = await readAllFrames(video.file, embedder.inputSize);
    const pick = video.pick(frames.length);
    const data = pack(pick.map((i) => frames[i]));
    embeddings.push(
      await embedder.embedClips(data, [1, pick.length, embedder.inputSize, embedder.inputSize, 3]),
    );
    frameCounts.push(frames.length);
    picks.push(pick);
  }
  const flat = new Float32Array(embeddings.reduce((n, e) => n + e.length, 0));
  let o = 0;
  for (const e of embeddings) {
    flat.set(e, o);
    o += e.length;
  }
  writeFileSync(`${base}.bin.tmp`, new Uint8Array(flat.buffer));
  renameSync(`${base}.bin.tmp`, `${base}.bin`);
  writeFileSync(`${base}.json`, JSON.stringify({ frameCounts, picks }));
  return { embeddings, frameCounts, picks };
}

/** A seeded PRNG for test data: uniform in [0, 1). */
export function prng(seed: number): () => number {
  return seedrandom(String(seed));
}

/** Sets every weight of `model` from a seeded PRNG: `draw(rand, weightName)` gives each value. */
export function seedWeights(
  model: tf.LayersModel,
  seed: number,
  draw: (rand: () => number, weightName: string) => number,
): void {
  const rand = prng(seed);
  const values = model.weights.map((w) => {
    const shape = w.shape as number[];
    return tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => draw(rand, w.name)),
      shape,
    );
  });
  model.setWeights(values);
  tf.dispose(values);
}

/** `count` frames of seeded random RGB bytes, S x S: uint8 [count, S, S, 3]. */
export function randomFrames(count: number, S: number, seed: number): Uint8Array {
  const rand = prng(seed);
  return Uint8Array.from({ length: count * S * S * 3 }, () => Math.floor(rand() * 256));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** `count` real frames (every `every`-th) of a video (a fixture path, or absolute), scaled to S x S: uint8 RGB [count, S, S, 3]. */
export function realFrames(relPath: string, count: number, every = 1, S = 224): Uint8Array {
  const { ffmpeg } = resolveBinaries();
  const file = relPath.startsWith('/') ? relPath : fixture(relPath);
  const args = [
    '-v',
    'error',
    '-i',
    file,
    '-vf',
    `select='not(mod(n\\,${every}))',scale=${S}:${S}`,
    '-vsync',
    '0',
  ];
  const run = spawnSync(
    ffmpeg,
    [...args, '-frames:v', String(count), '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
    {
      maxBuffer: 64 * 2 ** 20,
    },
  );
  if (run.status !== 0) throw new Error(`ffmpeg failed on ${relPath}: ${run.stderr}`);
  if (run.stdout.length !== count * S * S * 3)
    throw new Error(`ffmpeg gave ${run.stdout.length} bytes for ${count} frames of ${relPath}`);
  return new Uint8Array(run.stdout.buffer, run.stdout.byteOffset, run.stdout.length);
}
