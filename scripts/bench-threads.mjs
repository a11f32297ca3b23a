#!/usr/bin/env node
/**
 * `npm run bench:threads`: the onnx engine's threads and the pipeline's scheduling, measured
 * against ffmpeg's decoding, as a real `framewise embed` run has it (the figures: docs/performance.md).
 *
 *   node scripts/bench-threads.mjs [--rounds 3] [--videos DIR] [--only REGEX]
 *
 * On the benchmark videos (scripts/make_bench_videos.sh, made once into DIR, default
 * `<tmpdir>/framewise-bench-videos`), every round runs each contender once, in an order that
 * turns each round, so drift on a shared machine hits all of them alike:
 * - whole runs, `framewise embed DIR --no-cache --engine onnx` as a new process (bin/framewise.cjs,
 *   which sizes libuv's pool): the ONNX worker (`FRAMEWISE_ONNX_WORKER=0` runs `session.run` on the
 *   main thread), the decode workers (`FRAMEWISE_DECODE_WORKERS=0` decodes on the main thread), both
 *   off (as before issue 33), libuv's pool (`UV_THREADPOOL_SIZE`), the intra-op
 *   threads (1, 2 and the automatic count) x spinning off/on (`FRAMEWISE_ONNX_THREADS`,
 *   `FRAMEWISE_ONNX_SPINNING`), frames per `session.run` (`FRAMEWISE_ONNX_RUN_FRAMES`: a run
 *   holds the main thread), `--concurrency` (videos decoding at once) and `--threads`
 *   (ffmpeg's decoding threads), one lever at a time from the defaults;
 * - decode-only runs of the same plans (`bench-decode-run.mjs`): the strategy chosen (`auto`),
 *   decode-all and seek, ffmpeg threads, and the decode command with and without the `trim`
 *   that stops decoding after the last planned frame.
 * `--only` keeps the contenders whose label matches (the defaults always run).
 * Prints each contender's medians (wall, clips/s, CPU-s per clip with children, cores busy =
 * CPU-s / wall, and the main thread's CPU-s from /proc/<pid>/task) and its ratio to the
 * defaults, as a Markdown table, then the decode share: the decode-only run of the defaults'
 * plans against the defaults' whole run. `--x2` runs on DIR-x2 (every video twice, 20 videos:
 * made by `npm run bench:compare`, or here).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliArgs, ensureDoubled, ensureVideos, fmt, median, run, videoList } from './bench-lib.mjs';

const root = path.resolve(import.meta.dirname, '..');
const CLI = path.join(root, 'dist', 'cli', 'main.js');
// What users run: the command's entry, which sizes libuv's pool before running dist/cli/main.js.
const BIN = path.join(root, 'bin', 'framewise.cjs');
const DECODE_RUN = path.join(root, 'scripts', 'bench-decode-run.mjs');
const { value, positive, flag } = cliArgs();
const rounds = positive('rounds', 3);
const videos1 = path.resolve(value('videos', path.join(os.tmpdir(), 'framewise-bench-videos')));
const videos = flag('x2') ? `${videos1}-x2` : videos1;

const { autoIntraOpThreads, autoRunFrames } = await import(
  path.join(root, 'dist', 'engines', 'onnx', 'runtime.js')
);
const cores = os.availableParallelism();
const auto = autoIntraOpThreads(cores);
const defaultConcurrency = Math.max(1, Math.min(2, cores)); // as src/runners/options.ts

/** A whole `framewise embed` run; `env` holds the engine's levers, `flags` the pipeline's. */
function whole(label, env = {}, flags = []) {
  return {
    label,
    kind: 'whole',
    async run() {
      const out = mkdtempSync(path.join(os.tmpdir(), 'framewise-bench-threads-'));
      try {
        const file = path.join(out, 'emb.jsonl');
        const r = await run(
          process.execPath,
          [BIN, 'embed', videos, '--out', file, '--no-cache', '--quiet', '--engine', 'onnx', ...flags],
          { env, threads: true },
        );
        if (r.code !== 0)
          throw new Error(
            `${label}: framewise embed exited with ${r.signal ?? r.code}:\n${r.stderr.slice(-2000)}`,
          );
        const lines = readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        if (lines.some((l) => l.error)) throw new Error(`${label}: some videos failed`);
        return { wall: r.wall, clips: lines.length, cpu: r.cpu, main: mainThread(r.threads) };
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  };
}

/** A decode-only run of the same plans. */
function decodeOnly(label, mode, threads = 0) {
  return {
    label,
    kind: 'decode-only',
    async run() {
      const r = await run(process.execPath, [
        DECODE_RUN,
        videos,
        mode,
        String(threads),
        String(defaultConcurrency),
      ]);
      if (r.code !== 0)
        throw new Error(
          `${label}: bench-decode-run exited with ${r.signal ?? r.code}:\n${r.stderr.slice(-2000)}`,
        );
      const json = JSON.parse(r.stdout.trim().split('\n').pop());
      return { wall: r.wall, clips: json.videos, cpu: r.cpu, frames: json.frames };
    },
  };
}

/** The CPU-s of node's main thread in a run's per-thread figures. */
function mainThread(threads) {
  return threads?.find(([name]) => name === 'node main')?.[1].seconds;
}

const spin = (on) => ({ FRAMEWISE_ONNX_SPINNING: on ? '1' : '0' });
const threadCounts = [...new Set([1, 2, auto])];
const uvDefault = Math.max(4, 2 * cores); // as bin/framewise.cjs
const defaults = whole(
  `defaults: ONNX worker, decode workers, ${auto} intra-op threads (auto), spinning off, ${autoRunFrames(auto)} frame(s) a run, --concurrency ${defaultConcurrency}, ffmpeg --threads 0, UV_THREADPOOL_SIZE ${uvDefault}`,
);
const contenders = [
  defaults,
  whole('session.run on the main thread (FRAMEWISE_ONNX_WORKER=0)', { FRAMEWISE_ONNX_WORKER: '0' }),
  whole('decode on the main thread (FRAMEWISE_DECODE_WORKERS=0)', { FRAMEWISE_DECODE_WORKERS: '0' }),
  whole('both on the main thread (FRAMEWISE_ONNX_WORKER=0 FRAMEWISE_DECODE_WORKERS=0, as before issue 33)', {
    FRAMEWISE_ONNX_WORKER: '0',
    FRAMEWISE_DECODE_WORKERS: '0',
  }),
];
for (const n of [4, 8]) {
  if (n !== uvDefault)
    contenders.push(whole(`libuv thread pool UV_THREADPOOL_SIZE=${n}`, { UV_THREADPOOL_SIZE: String(n) }));
}
for (const t of threadCounts) {
  for (const on of [false, true]) {
    if (t === auto && !on) continue; // the defaults
    contenders.push(
      whole(
        `${t} intra-op thread${t === 1 ? '' : 's'}${t === auto ? ' (auto)' : ''}, spinning ${on ? 'on' : 'off'}`,
        { FRAMEWISE_ONNX_THREADS: String(t), ...spin(on) },
      ),
    );
  }
}
for (const f of [4, 32])
  if (f !== autoRunFrames(auto))
    contenders.push(whole(`${f} frames a session.run`, { FRAMEWISE_ONNX_RUN_FRAMES: String(f) }));
for (const c of [1, 2, 3])
  if (c !== defaultConcurrency)
    contenders.push(whole(`--concurrency ${c}`, {}, ['--concurrency', String(c)]));
for (const t of [1, 2]) contenders.push(whole(`ffmpeg --threads ${t}`, {}, ['--threads', String(t)]));
const decodeBase = decodeOnly(`decode only: the defaults' plans (strategy auto), ffmpeg --threads 0`, 'auto');
contenders.push(
  decodeBase,
  decodeOnly('decode only: ffmpeg --threads 1', 'auto', 1),
  decodeOnly('decode only: decode-all (strategy decode)', 'decode'),
  decodeOnly('decode only: seek (strategy seek)', 'seek'),
  decodeOnly('decode only, ffmpeg alone: decoding stops after the last planned frame (as planned)', 'span'),
  decodeOnly('decode only, ffmpeg alone: decoding to the end of each file', 'to-end'),
);

const only = value('only');
const chosen =
  only === undefined
    ? contenders
    : contenders.filter((c) => c === defaults || new RegExp(only).test(c.label));
if (!chosen.includes(decodeBase)) chosen.push(decodeBase); // for the decode share
contenders.splice(0, contenders.length, ...chosen);

if (!existsSync(CLI)) {
  console.error('bench-threads: dist/cli/main.js is missing; run `npm run build` first');
  process.exit(2);
}
ensureVideos(videos1);
if (videos !== videos1) ensureDoubled(videos1, videos);
console.log(
  `bench-threads: ${videoList(videos).length} videos in ${videos}; ${cores} cores; ${rounds} rounds; ${contenders.length} contenders`,
);
{
  // Convert and cache the backbone once, so that every run starts from the cached model.
  const warm = await whole('warm-up').run();
  console.log(`warm-up: ${fmt(warm.wall, 1)} s`);
}

const results = new Map(contenders.map((c) => [c, []]));
for (let round = 0; round < rounds; round += 1) {
  // Turn the order each round.
  const shift = (round * Math.ceil(contenders.length / rounds)) % contenders.length;
  const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
  for (const c of order) {
    const r = await c.run();
    results.get(c).push(r);
    console.log(`round ${round + 1}: ${c.label}: ${fmt(r.wall, 2)} s, ${fmt(r.cpu / r.clips)} CPU-s/clip`);
  }
}

const stats = (c) => {
  const rs = results.get(c);
  return {
    wall: median(rs.map((r) => r.wall)),
    clipsPerS: median(rs.map((r) => r.clips / r.wall)),
    cpuPerClip: median(rs.map((r) => r.cpu / r.clips)),
    cores: median(rs.map((r) => r.cpu / r.wall)),
    main: rs.every((r) => r.main !== undefined) ? median(rs.map((r) => r.main)) : undefined,
    walls: rs.map((r) => r.wall),
  };
};
const base = stats(defaults);
console.log(
  '\n| contender | wall s (median) | clips/s | CPU-s per clip | cores busy | main thread CPU-s | time / defaults | walls per round |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const c of contenders) {
  const s = stats(c);
  const cells = [
    c.label,
    fmt(s.wall),
    c.kind === 'whole' ? fmt(s.clipsPerS, 3) : '',
    fmt(s.cpuPerClip),
    fmt(s.cores),
    s.main === undefined ? '' : fmt(s.main),
  ];
  console.log(
    `| ${cells.join(' | ')} | ${fmt(s.wall / base.wall)} | ${s.walls.map((w) => fmt(w)).join(', ')} |`,
  );
}
const d = stats(decodeBase);
// Per round, the decode-only run against the whole run of the same round.
const shares = results.get(decodeBase).map((r, i) => r.wall / results.get(defaults)[i].wall);
console.log(
  `\ndecode share: the decode-only run takes ${fmt((100 * d.wall) / base.wall, 0)}% of the whole run's time (per round: ${shares.map((x) => `${fmt(100 * x, 0)}%`).join(', ')}) and ${fmt((100 * d.cpuPerClip) / base.cpuPerClip, 0)}% of its CPU (${fmt(d.cpuPerClip)} of ${fmt(base.cpuPerClip)} CPU-s per clip)`,
);
console.log(`summary: ${JSON.stringify(Object.fromEntries(contenders.map((c) => [c.label, stats(c)])))}`);
