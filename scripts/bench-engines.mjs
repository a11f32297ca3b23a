#!/usr/bin/env node
/**
 * `npm run bench:engines`: the ONNX Runtime engine against tfjs-wasm, alternating.
 *
 *   node scripts/bench-engines.mjs [--rounds 3] [--videos DIR] [--backbone mobilenet_v2] [--json]
 *
 * 1. Backbone only, on real frames (decoded once from the first videos of DIR, default
 *    `samples/`): both engines are loaded side by side, warmed up, then timed in alternating
 *    rounds (onnx, tfjs, onnx, tfjs...), each round running the same frames in clips of 16.
 *    Two settings: as shipped (onnx: intra-op threads by cores; tfjs: its worker pool), and
 *    one thread each (onnx 1 intra-op thread; tfjs in-process, `workers: 0`). Prints median
 *    frames/s and ms/frame, and the largest |onnx - tfjs| on those frames.
 * 2. Whole run: `framewise embed DIR --no-cache --engine E` as a new process per round,
 *    alternating engines, videos/s (converted backbone cached before the first round).
 *
 * Run `npm run build` first. Absolute numbers drift on shared machines; compare within a run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { cliArgs } from './bench-lib.mjs';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const CLI = path.join(root, 'dist', 'cli', 'main.js');
const { value, positive } = cliArgs();
const rounds = positive('rounds', 3);
const videosDir = path.resolve(value('videos', path.join(root, 'samples')));
const backbone = value('backbone', 'mobilenet_v2');
const framesPerClip = 16;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function listVideos(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listVideos(p));
    else if (/\.(mp4|mkv|webm|mov|avi|m4v)$/i.test(entry.name)) out.push(p);
  }
  return out.sort();
}

/** `count` frames of each video, scaled to S x S, packed: uint8 [n, S, S, 3]. */
function decode(files, count, S) {
  const ffmpeg = process.env.FFMPEG_PATH || require('@ffmpeg-installer/ffmpeg').path;
  const parts = files.map((file) => {
    const r = spawnSync(
      ffmpeg,
      [
        '-v',
        'error',
        '-i',
        file,
        '-vf',
        `scale=${S}:${S}`,
        '-frames:v',
        String(count),
        '-f',
        'rawvideo',
        '-pix_fmt',
        'rgb24',
        '-',
      ],
      { maxBuffer: 2 ** 28 },
    );
    if (r.status !== 0) throw new Error(`ffmpeg failed on ${file}: ${r.stderr}`);
    return r.stdout;
  });
  const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p, offset);
    offset += p.length;
  }
  return data;
}

if (!existsSync(CLI)) {
  console.error('bench-engines: dist/ is missing; run `npm run build` first');
  process.exit(2);
}
const { createFrameEmbedder } = await import(path.join(root, 'dist', 'index.js'));
const files = listVideos(videosDir);
const cpus = os.cpus();
console.log(
  `bench-engines: ${backbone}, ${files.length} videos in ${videosDir}; ${os.availableParallelism()} cores (${cpus[0]?.model ?? 'unknown'}); ${rounds} rounds`,
);

// ---- 1. backbone only --------------------------------------------------------------
const probe = await createFrameEmbedder({ backbone, engine: 'onnx' });
const S = probe.inputSize;
await probe.dispose();
const clips = 4;
const data = decode(files.slice(0, clips), framesPerClip, S); // [clips*16, S, S, 3]
const n = data.length / (S * S * 3);
const shape = [n / framesPerClip, framesPerClip, S, S, 3];
const figures = { backbone, frames: n, settings: {} };

for (const setting of [
  { name: 'as shipped', onnx: {}, tfjs: {} },
  { name: 'one thread each', onnx: { intraOpThreads: 1 }, tfjs: { workers: 0 } },
]) {
  const onnx = await createFrameEmbedder({ backbone, engine: 'onnx', ...setting.onnx });
  const tfjs = await createFrameEmbedder({ backbone, engine: 'tfjs', backend: 'wasm', ...setting.tfjs });
  try {
    const a = await onnx.embedClips(data.slice(), shape); // warm-up, and the outputs to compare
    const b = await tfjs.embedClips(data.slice(), shape);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    const times = { onnx: [], tfjs: [] };
    for (let r = 0; r < rounds; r += 1) {
      for (const [name, e] of [
        ['onnx', onnx],
        ['tfjs', tfjs],
      ]) {
        const input = data.slice(); // a pool may take (transfer) the buffer
        const t0 = performance.now();
        await e.embedClips(input, shape);
        times[name].push((performance.now() - t0) / 1000);
      }
    }
    const fps = { onnx: n / median(times.onnx), tfjs: n / median(times.tfjs) };
    figures.settings[setting.name] = {
      onnx: {
        framesPerS: fps.onnx,
        msPerFrame: 1000 / fps.onnx,
        rounds: times.onnx.map((t) => n / t),
        reason: onnx.engine.reason,
      },
      tfjs: {
        framesPerS: fps.tfjs,
        msPerFrame: 1000 / fps.tfjs,
        rounds: times.tfjs.map((t) => n / t),
        reason: tfjs.backend.reason,
      },
      speedUp: fps.onnx / fps.tfjs,
      maxAbsDiff: diff,
    };
    console.log(
      `backbone, ${setting.name}: onnx ${fmt(fps.onnx, 1)} frames/s (${fmt(1000 / fps.onnx, 1)} ms/frame) | tfjs ${tfjs.backend.name} ${fmt(fps.tfjs, 1)} frames/s (${fmt(1000 / fps.tfjs, 1)} ms/frame) | ` +
        `onnx/tfjs ${fmt(fps.onnx / fps.tfjs)}x; max |onnx - tfjs| ${diff.toExponential(2)} over ${n} real frames`,
    );
    console.log(
      `  per round frames/s: onnx ${times.onnx.map((t) => fmt(n / t, 1)).join(', ')}; tfjs ${times.tfjs.map((t) => fmt(n / t, 1)).join(', ')}`,
    );
    console.log(`  onnx: ${onnx.engine.reason}\n  tfjs: ${tfjs.backend.reason}`);
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
  }
}

// ---- 2. whole run --------------------------------------------------------------------
function embedRun(engine) {
  const out = mkdtempSync(path.join(os.tmpdir(), 'framewise-bench-engines-'));
  return new Promise((resolve, reject) => {
    const file = path.join(out, 'emb.jsonl');
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [
        CLI,
        'embed',
        videosDir,
        '--out',
        file,
        '--no-cache',
        '--quiet',
        '--engine',
        engine,
        '--backbone',
        backbone,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - t0) / 1000;
      try {
        if (code !== 0)
          throw new Error(`framewise embed --engine ${engine} exited with ${code}:\n${stderr.slice(-2000)}`);
        const lines = readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        const failed = lines.filter((l) => l.error).length;
        if (failed) throw new Error(`framewise embed --engine ${engine}: ${failed} videos failed`);
        resolve({ wall, videos: lines.length, engine: lines[0]?.engine, backend: lines[0]?.backend });
      } catch (error) {
        reject(error);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  });
}

await embedRun('onnx'); // the converted model and the folded tfjs backbone are cached before timing
await embedRun('tfjs');
const runs = { onnx: [], tfjs: [] };
for (let r = 0; r < rounds; r += 1) {
  for (const engine of ['onnx', 'tfjs']) runs[engine].push(await embedRun(engine));
}
figures.wholeRun = {};
for (const engine of ['onnx', 'tfjs']) {
  const vps = runs[engine].map((x) => x.videos / x.wall);
  figures.wholeRun[engine] = {
    videosPerS: median(vps),
    rounds: vps,
    videos: runs[engine][0].videos,
    engine: runs[engine][0].engine,
    backend: runs[engine][0].backend,
  };
}
const w = figures.wholeRun;
console.log(
  `whole run, framewise embed ${path.relative(root, videosDir) || '.'} --no-cache (${w.onnx.videos} videos, a new process each): onnx ${fmt(w.onnx.videosPerS, 3)} videos/s | tfjs ${fmt(w.tfjs.videosPerS, 3)} videos/s | onnx/tfjs ${fmt(w.onnx.videosPerS / w.tfjs.videosPerS)}x`,
);
console.log(
  `  per round videos/s: onnx ${w.onnx.rounds.map((x) => fmt(x, 3)).join(', ')}; tfjs ${w.tfjs.rounds.map((x) => fmt(x, 3)).join(', ')}`,
);
console.log(`summary: ${JSON.stringify(figures)}`);
