#!/usr/bin/env node
/**
 * One library-API run for `bench-compare.mjs`, timed the way the reference pipeline times
 * itself: set-up (creating the pipeline and one warm-up video, as the reference builds its
 * model and runs it once) is reported apart, then the whole folder is embedded and timed.
 *
 *   node scripts/bench-library-run.mjs VIDEO_DIR [WORKERS]
 *
 * Prints one JSON line: videos, setup_s, wall_s, clips_per_s.
 */
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const [dir, workers] = process.argv.slice(2);
if (!dir) throw new TypeError('usage: bench-library-run.mjs VIDEO_DIR [WORKERS]');
const { createPipeline, discover, isErrorRecord } = await import(path.join(root, 'dist', 'index.js'));

const started = performance.now();
const fw = await createPipeline({ cache: false, backend: 'wasm', ...(workers ? { workers: Number(workers) } : {}) });
try {
  const [first] = await discover(dir);
  for await (const r of fw.embed(first.path)) if (isErrorRecord(r)) throw new Error(`warm-up: ${r.path}: ${r.error.message}`);
  const setup = (performance.now() - started) / 1000;
  const t0 = performance.now();
  let videos = 0;
  for await (const r of fw.embed(dir)) {
    if (isErrorRecord(r)) throw new Error(`${r.path}: ${r.error.message}`);
    videos += 1;
  }
  const wall = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ videos, setup_s: +setup.toFixed(2), wall_s: +wall.toFixed(3), clips_per_s: +(videos / wall).toFixed(3) }));
} finally {
  await fw.close();
}
