#!/usr/bin/env node
/**
 * One library-API run for `bench-compare.mjs`, timed the way the reference pipeline times
 * itself: set-up (creating the pipeline and one warm-up video, as the reference builds its
 * model and runs it once) is reported apart, then the whole folder is embedded and timed.
 *
 *   node scripts/bench-library-run.mjs VIDEO_DIR [WORKERS] [ENGINE]
 *
 * ENGINE is `auto` (the default), `onnx` or `tfjs`; WORKERS (tfjs worker threads) may be `-`.
 *
 * Prints one JSON line: videos, setup_s, wall_s, clips_per_s, and where the CPU time of the
 * timed part went (Linux), in CPU-s per clip: this process (`process`), split into the
 * inference workers (its busiest threads besides the main one), the main thread and the rest
 * (V8's helper threads, libuv's pool, sharp), and its finished children (`children`: ffmpeg
 * and ffprobe).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const HZ = 100; // USER_HZ on Linux

/** utime+stime and cutime+cstime, in seconds, of a /proc stat file. */
function statTimes(file) {
  const stat = readFileSync(file, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return { self: (f[11] + f[12]) / HZ, children: (f[13] + f[14]) / HZ };
}

/** CPU seconds of this process, of its finished children, and of each of its threads (Linux). */
function cpuTimes() {
  if (!existsSync('/proc/self/stat')) return undefined;
  const threads = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      threads.set(tid, statTimes(`/proc/self/task/${tid}/stat`).self);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { ...statTimes('/proc/self/stat'), threads };
}

/** Splits the timed CPU of this process by thread: main, the busiest `workers` others, the rest. */
function threadSplit(before, after, workers) {
  const main = String(process.pid);
  const delta = [...after.threads].map(([tid, s]) => [tid, s - (before.threads.get(tid) ?? 0)]);
  const others = delta.filter(([tid]) => tid !== main).sort((a, b) => b[1] - a[1]);
  const sum = (xs) => xs.reduce((a, [, s]) => a + s, 0);
  return {
    main: sum(delta.filter(([tid]) => tid === main)),
    workers: sum(others.slice(0, workers)),
    other: sum(others.slice(workers)),
  };
}

const root = path.resolve(import.meta.dirname, '..');
const [dir, workersArg, engine = 'auto'] = process.argv.slice(2);
const workers = workersArg === '-' ? undefined : workersArg;
if (!dir) throw new TypeError('usage: bench-library-run.mjs VIDEO_DIR [WORKERS] [ENGINE]');
const { createPipeline, discoverInputs, isErrorRecord } = await import(path.join(root, 'dist', 'index.js'));

const started = performance.now();
const fw = await createPipeline({
  cache: false,
  engine,
  backend: 'wasm',
  ...(workers ? { workers: Number(workers) } : {}),
});
try {
  const [first] = await discoverInputs(dir);
  for await (const r of fw.embed(first.path))
    if (isErrorRecord(r)) throw new Error(`warm-up: ${r.path}: ${r.error.message}`);
  const setup = (performance.now() - started) / 1000;
  const t0 = performance.now();
  const cpu0 = cpuTimes();
  let videos = 0;
  for await (const r of fw.embed(dir)) {
    if (isErrorRecord(r)) throw new Error(`${r.path}: ${r.error.message}`);
    videos += 1;
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = cpuTimes();
  const perClip = (seconds) => +(seconds / videos).toFixed(3);
  let cpu;
  if (cpu0 && cpu1) {
    const split = threadSplit(
      cpu0,
      cpu1,
      Number(workers ?? (fw.backend ?? fw.engine).reason.match(/(\d+) (?:worker|intra-op) thread/)?.[1] ?? 0),
    );
    cpu = {
      process: perClip(cpu1.self - cpu0.self),
      children: perClip(cpu1.children - cpu0.children),
      workers: perClip(split.workers),
      main: perClip(split.main),
      otherThreads: perClip(split.other),
    };
  }
  console.log(
    JSON.stringify({
      videos,
      setup_s: +setup.toFixed(2),
      wall_s: +wall.toFixed(3),
      clips_per_s: +(videos / wall).toFixed(3),
      cpu_s_per_clip: cpu,
    }),
  );
} finally {
  await fw.close();
}
