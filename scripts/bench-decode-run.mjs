#!/usr/bin/env node
/**
 * One decode-only run for `bench-threads.mjs`: the plans `framewise embed` makes for each
 * video (16 uniform frames at 224, fit cover), decoded and never embedded, `CONCURRENCY`
 * videos at a time as the pipeline runs them.
 *
 *   node scripts/bench-decode-run.mjs VIDEO_DIR MODE THREADS CONCURRENCY
 *
 * MODE: `auto`, `decode` or `seek` run `extractClips` with that strategy (ffmpeg, then
 * sharp's resize, as in a real run); `span` and `to-end` run the ffmpeg command of the
 * decode strategy alone, its frames thrown away, as planned (decoding stops after the last
 * planned frame) and without the `trim` that stops it (decoding to the end of the file).
 * Prints one JSON line: videos, frames, wall_s.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { videoList } from './bench-lib.mjs';

const root = path.resolve(import.meta.dirname, '..');
const [dir, mode, threadsArg, concurrencyArg] = process.argv.slice(2);
if (!dir || !['auto', 'decode', 'seek', 'span', 'to-end'].includes(mode))
  throw new TypeError(
    'usage: bench-decode-run.mjs VIDEO_DIR auto|decode|seek|span|to-end THREADS CONCURRENCY',
  );
const threads = Number(threadsArg);
const concurrency = Number(concurrencyArg);
const { extractClips, parseSampling, planClips, probe } = await import(
  path.join(root, 'dist', 'ingest', 'index.js')
);
const { planExtraction } = await import(path.join(root, 'dist', 'ingest', 'extract-plan.js'));
const { resolveBinaries } = await import(path.join(root, 'dist', 'ingest', 'decoders', 'cli', 'ffmpeg.js'));
const sampling = parseSampling('uniform', 16);

/** ffmpeg's rgb24 frames of `args`, counted and dropped; resolves with the frame count. */
function rawDecode(args, frameBytes) {
  return new Promise((resolve, reject) => {
    const child = spawn(resolveBinaries().ffmpeg, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let bytes = 0;
    child.stdout.on('data', (chunk) => (bytes += chunk.length));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(bytes / frameBytes) : reject(new Error(`ffmpeg exited with ${code}`)),
    );
  });
}

async function one(file) {
  const info = await probe(file);
  const plans = planClips(info, sampling);
  if (mode === 'auto' || mode === 'decode' || mode === 'seek') {
    const clips = await extractClips(file, plans, {
      size: 224,
      fit: 'cover',
      probe: info,
      threads,
      strategy: mode,
    });
    return clips.reduce((n, c) => n + c.shape[0], 0);
  }
  const { args } = planExtraction(file, plans, info, 'decode', threads);
  // `to-end`: the same filter graph less its `trim=end=...`, so ffmpeg decodes the whole file.
  const used = mode === 'span' ? args : args.map((a) => a.replace(/^trim=end=[\d.]+,/, ''));
  return rawDecode(used, info.width * info.height * 3);
}

const files = videoList(dir).map((f) => path.join(dir, f));
const started = performance.now();
let next = 0;
let frames = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < files.length) {
      const n = await one(files[next++]); // not `frames += await`: that reads `frames` before the wait
      frames += n;
    }
  }),
);
console.log(
  JSON.stringify({
    videos: files.length,
    frames,
    wall_s: +((performance.now() - started) / 1000).toFixed(3),
  }),
);
