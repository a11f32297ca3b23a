#!/usr/bin/env node
/**
 * `npm run bench:compare`: framewise against the PyTorch reference pipeline, side by side.
 *
 *   node scripts/bench-compare.mjs [--rounds 3] [--videos DIR] [--engine auto|onnx|tfjs] [--no-reference]
 *                                  [--no-extras] [--sweep] [--vs-env KEY=VALUE] [-- <extra flags for framewise embed>]
 *
 * `--engine` (default `auto`, what users get) picks the backbone engine on the framewise side;
 * the tfjs backend is wasm throughout.
 *
 * 1. Makes the benchmark videos with scripts/make_bench_videos.sh (ffmpeg from
 *    @ffmpeg-installer) into DIR, default `<tmpdir>/framewise-bench-videos`, once.
 * 2. Alternates A L B, A L B...: A = `framewise embed DIR --no-cache` as a child process
 *    (cold: a new process each round, no embedding cache, the backbone from its disk cache);
 *    L = the library API in a new process, timed as the reference times itself
 *    (`bench-library-run.mjs`: set-up and one warm-up video apart, then the folder);
 *    B = the reference, `/usr/bin/python3 scripts/reference/torch_pipeline.py DIR 2 16 224`,
 *    where that python has torch (skipped otherwise, e.g. on CI).
 *    Then, in the same round, A and B again on DIR-x2 (every video twice, made beside DIR).
 * 3. Prints per-round clips/s of each and four median ratios: like for like (L against the
 *    reference's own timer: both leave set-up out), whole process against whole process
 *    (A against the reference's process), marginal (the |DIR| videos that DIR-x2 adds, over
 *    the difference of the two whole-process times on each side, so start-up cancels out),
 *    and A against the reference's own timer (start-up counted on one side only).
 * 4. Extras: backbone frames/s against the machine's peak, peak RSS, and the cold start to
 *    the first result with a cached backbone.
 * `--sweep` also runs framewise over a grid of --workers x --concurrency, to pick defaults.
 * `--vs-env KEY=VALUE` adds a second framewise contender, A0, run with that variable set
 * (`FRAMEWISE_DECODE_WORKERS=0`: decoding on the main thread, as before issue 33), in every
 * round right after A on DIR and on DIR-x2, with the same ratios. Cores busy (CPU-s / wall,
 * children included) is printed for each framewise run.
 *
 * Absolute numbers drift on shared machines; compare ratios from one run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  cpuInfo,
  ensureDoubled,
  ensureVideos,
  ffmpegPath,
  fmt,
  median,
  mib,
  run,
  videoList as listVideos,
} from './bench-lib.mjs';

const root = path.resolve(import.meta.dirname, '..');
const PYTHON = '/usr/bin/python3';
const REFERENCE = path.join(root, 'scripts', 'reference', 'torch_pipeline.py');
const CLI = path.join(root, 'dist', 'cli', 'main.js');
const LIBRARY_RUN = path.join(root, 'scripts', 'bench-library-run.mjs');
const GFLOP_PER_FRAME = 0.6; // MobileNetV2 at 224: ~300 M multiply-adds

// ---- arguments -------------------------------------------------------------------------
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const extra = dash >= 0 ? argv.slice(dash + 1) : [];
const own = dash >= 0 ? argv.slice(0, dash) : argv;
function flag(name) {
  return own.includes(`--${name}`);
}
function value(name, fallback) {
  const i = own.indexOf(`--${name}`);
  return i >= 0 && own[i + 1] !== undefined ? own[i + 1] : fallback;
}
const rounds = Number(value('rounds', 3));
if (!Number.isInteger(rounds) || rounds < 1)
  throw new TypeError(`Expected a positive integer for \`--rounds\` but received ${value('rounds')}`);
const videos = path.resolve(value('videos', path.join(os.tmpdir(), 'framewise-bench-videos')));
const engine = value('engine', 'auto');
if (!['auto', 'onnx', 'tfjs'].includes(engine))
  throw new TypeError(`Expected one of 'auto', 'onnx', 'tfjs' for \`--engine\` but received ${engine}`);

/** The marginal set (see ensureDoubled): its time minus DIR's is the time of |DIR| more videos, start-up cancelled. */
function doubleSet() {
  const dir = `${videos}-x2`;
  ensureDoubled(videos, dir);
  return dir;
}

function referenceAvailable() {
  if (flag('no-reference')) return 'skipped by --no-reference';
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const check = spawnSync(PYTHON, ['-c', 'import torch, torchvision, av, cv2'], { encoding: 'utf8' });
  if (check.status !== 0)
    return `${PYTHON} lacks torch/torchvision/av/cv2 (see scripts/reference/torch_pipeline.py for the apt-get line)`;
  return undefined;
}

const videoList = () => listVideos(videos);

async function framewiseRound(flags = [], dir = videos, env = {}) {
  const out = mkdtempSync(path.join(os.tmpdir(), 'framewise-bench-out-'));
  try {
    const file = path.join(out, 'emb.jsonl');
    const r = await run(
      process.execPath,
      [
        CLI,
        'embed',
        dir,
        '--out',
        file,
        '--no-cache',
        '--quiet',
        '--engine',
        engine,
        '--backend',
        'wasm',
        ...flags,
        ...extra,
      ],
      { env },
    );
    if (r.code !== 0)
      throw new Error(`framewise embed exited with ${r.signal ?? r.code}:\n${r.stderr.slice(-2000)}`);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const failed = lines.filter((l) => JSON.parse(l).error).length;
    if (failed) throw new Error(`framewise embed: ${failed} videos failed`);
    return {
      clipsPerS: lines.length / r.wall,
      wall: r.wall,
      peakSelf: r.peakSelf,
      peakTree: r.peakTree,
      n: lines.length,
      cpuPerClip: r.cpu / lines.length,
      cores: r.cpu / r.wall,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function libraryRound() {
  const r = await run(process.execPath, [LIBRARY_RUN, videos, '-', engine]);
  if (r.code !== 0)
    throw new Error(`bench-library-run exited with ${r.signal ?? r.code}:\n${r.stderr.slice(-2000)}`);
  const json = JSON.parse(r.stdout.trim().split('\n').pop());
  return { clipsPerS: json.clips_per_s, setup: json.setup_s, wall: json.wall_s, cpu: json.cpu_s_per_clip };
}

async function referenceRound(dir = videos) {
  const r = await run(PYTHON, [REFERENCE, dir, '2', '16', '224']);
  if (r.code !== 0) throw new Error(`reference exited with ${r.signal ?? r.code}:\n${r.stderr.slice(-2000)}`);
  const json = JSON.parse(r.stdout.trim().split('\n').pop());
  return {
    clipsPerS: json.clips_per_s,
    processClipsPerS: json.videos / r.wall,
    n: json.videos,
    wall: r.wall,
    setup: json.setup_s,
    json,
    peakSelf: r.peakSelf,
    peakTree: r.peakTree,
    cpuPerClip: r.cpu / json.videos,
  };
}

/** Backbone-only frames/s through the default (fast) embedder, on real decoded frames. */
async function backboneThroughput() {
  const { createFrameEmbedder } = await import(path.join(root, 'dist', 'index.js'));
  const S = 224;
  const frames = 32;
  const raw = spawnSync(
    ffmpegPath(),
    [
      '-v',
      'error',
      '-i',
      path.join(videos, videoList()[0]),
      '-vf',
      `scale=${S}:${S}`,
      '-frames:v',
      String(frames),
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-',
    ],
    { maxBuffer: 2 ** 28 },
  );
  const data = new Uint8Array(raw.stdout.buffer, raw.stdout.byteOffset, raw.stdout.length);
  const embedder = await createFrameEmbedder({ engine, backend: 'wasm' });
  try {
    const call = () => embedder.embedClips(data, [frames / 16, 16, S, S, 3]);
    await call(); // warm-up: kernels, wasm heap growth
    const started = performance.now();
    const calls = 3;
    // Two calls in flight, as the pipeline keeps them.
    for (let i = 0; i < calls; i += 1) await Promise.all([call(), call()]);
    const fps = (calls * 2 * frames) / ((performance.now() - started) / 1000);
    return { fps, backend: embedder.backend ?? embedder.engine }; // the tfjs backend, else the engine
  } finally {
    await embedder.dispose();
  }
}

/** Seconds from spawning `embed` on one video to its first result line (cached backbone). */
async function coldStart() {
  const video = path.join(videos, videoList()[0]);
  let first;
  const r = await run(
    process.execPath,
    [
      CLI,
      'embed',
      video,
      '--out=-',
      '--no-cache',
      '--quiet',
      '--engine',
      engine,
      '--backend',
      'wasm',
      ...extra,
    ],
    {
      onLine: (line, t) => {
        if (first === undefined && line.startsWith('{')) first = t;
      },
    },
  );
  if (r.code !== 0) throw new Error(`framewise embed exited with ${r.code}:\n${r.stderr.slice(-2000)}`);
  return { first, wall: r.wall };
}

// ---- main ------------------------------------------------------------------------------
if (!existsSync(CLI)) {
  console.error('bench-compare: dist/cli/main.js is missing; run `npm run build` first');
  process.exit(2);
}
ensureVideos(videos);
const list = videoList();
const doubled = doubleSet();
const cpu = cpuInfo();
const whyNoReference = referenceAvailable();
console.log(
  `bench-compare: ${list.length} videos in ${videos}; ${cpu.cores} cores (${cpu.model}); ${rounds} rounds`,
);
console.log(
  `framewise: node ${CLI} embed DIR --no-cache --quiet --engine ${engine} --backend wasm ${extra.join(' ')}`.trimEnd(),
);
console.log(
  whyNoReference
    ? `reference: skipped (${whyNoReference})`
    : `reference: ${PYTHON} ${path.relative(root, REFERENCE)} DIR 2 16 224`,
);

// Load (and cache) the backbone once, so that every round starts from the cached backbone.
{
  const warm = await run(process.execPath, [
    CLI,
    'embed',
    path.join(videos, list[0]),
    '--out=-',
    '--no-cache',
    '--quiet',
    '--engine',
    engine,
    '--backend',
    'wasm',
  ]);
  if (warm.code !== 0) throw new Error(`warm-up failed:\n${warm.stderr.slice(-2000)}`);
}

const vsEnv = value('vs-env');
if (vsEnv !== undefined && !/^[A-Z_][A-Z0-9_]*=/.test(vsEnv))
  throw new TypeError(`Expected KEY=VALUE for \`--vs-env\` but received ${vsEnv}`);
const envA0 =
  vsEnv === undefined
    ? undefined
    : { [vsEnv.slice(0, vsEnv.indexOf('='))]: vsEnv.slice(vsEnv.indexOf('=') + 1) };
const A0 = []; // --vs-env: the second framewise contender, on DIR and DIR-x2
const A02 = [];
const A = [];
const L = [];
const B = [];
const A2 = []; // the doubled set, for the marginal rate
const B2 = [];
/** Clips/s of the videos the doubled set adds: start-up and warm-up cancel out. */
const marginal = (single, double) => (double.n - single.n) / (double.wall - single.wall);
for (let i = 0; i < rounds; i += 1) {
  const a = await framewiseRound();
  A.push(a);
  if (envA0) A0.push(await framewiseRound([], videos, envA0));
  const l = await libraryRound();
  L.push(l);
  let line = `round ${i + 1}: framewise embed ${fmt(a.clipsPerS, 3)} clips/s (process ${fmt(a.wall, 1)} s, ${fmt(a.cpuPerClip)} CPU-s/clip, peak RSS ${mib(a.peakSelf)}, with ffmpeg ${mib(a.peakTree)}); library ${fmt(l.clipsPerS, 3)} clips/s (${fmt(l.wall, 1)} s after ${fmt(l.setup, 1)} s set-up; CPU-s/clip: workers ${fmt(l.cpu?.workers)}, main ${fmt(l.cpu?.main)}, other threads ${fmt(l.cpu?.otherThreads)}, ffmpeg ${fmt(l.cpu?.children)})`;
  if (!whyNoReference) {
    const b = await referenceRound();
    B.push(b);
    line += ` | reference ${fmt(b.clipsPerS, 3)} clips/s (process ${fmt(b.processClipsPerS, 3)} incl. ${fmt(b.setup, 1)} s set-up; ${fmt(b.cpuPerClip)} CPU-s/clip; peak RSS ${mib(b.peakSelf)})`;
  }
  console.log(line);
  // Marginal: the doubled set on each side, right after the single set.
  const a2 = await framewiseRound([], doubled);
  A2.push(a2);
  if (envA0) A02.push(await framewiseRound([], doubled, envA0));
  line = `  marginal: framewise ${fmt(a2.wall, 1)} s for ${a2.n} videos against ${fmt(a.wall, 1)} s for ${a.n}: ${fmt(marginal(a, a2), 3)} clips/s`;
  line += `; cores busy ${fmt(a.cores)} (${a.n} videos), ${fmt(a2.cores)} (${a2.n})`;
  if (envA0) {
    const [x, x2] = [A0[i], A02[i]];
    line += ` | ${vsEnv}: ${fmt(x.wall, 1)} s and ${fmt(x2.wall, 1)} s: ${fmt(marginal(x, x2), 3)} clips/s; cores busy ${fmt(x.cores)}, ${fmt(x2.cores)}`;
  }
  if (!whyNoReference) {
    const b2 = await referenceRound(doubled);
    B2.push(b2);
    line += `; reference ${fmt(b2.wall, 1)} s against ${fmt(B[i].wall, 1)} s: ${fmt(marginal(B[i], b2), 3)} clips/s`;
  }
  console.log(line);
}

const summary = {
  framewiseCoresBusy: { single: median(A.map((a) => a.cores)), doubled: median(A2.map((a) => a.cores)) },
  framewiseClipsPerS: median(A.map((a) => a.clipsPerS)),
  libraryClipsPerS: median(L.map((l) => l.clipsPerS)),
  framewisePeakRssMiB: Math.round(Math.max(...A.map((a) => a.peakSelf)) / 1024),
};
console.log(
  `framewise embed: median ${fmt(summary.framewiseClipsPerS, 3)} clips/s (whole process); peak RSS ${mib(Math.max(...A.map((a) => a.peakSelf)))} (${mib(Math.max(...A.map((a) => a.peakTree)))} with ffmpeg)`,
);
console.log(`framewise library: median ${fmt(summary.libraryClipsPerS, 3)} clips/s (set-up excluded)`);
if (L[0].cpu?.process !== undefined) {
  const m = (key) => median(L.map((l) => l.cpu[key]));
  summary.libraryCpuPerClip = {
    workers: m('workers'),
    main: m('main'),
    otherThreads: m('otherThreads'),
    ffmpeg: m('children'),
  };
  const c = summary.libraryCpuPerClip;
  console.log(
    `  where its CPU goes, CPU-s per clip (medians): inference workers ${fmt(c.workers)}, main thread ${fmt(c.main)}, other threads (V8 helpers, libuv, sharp) ${fmt(c.otherThreads)}, ffmpeg ${fmt(c.ffmpeg)}; total ${fmt(c.workers + c.main + c.otherThreads + c.ffmpeg)}`,
  );
}
if (B.length) {
  const ratio = (xs, ys) => xs.map((x, i) => x / ys[i]);
  const likeForLike = ratio(
    L.map((l) => l.clipsPerS),
    B.map((b) => b.clipsPerS),
  );
  const processRatios = ratio(
    A.map((a) => a.clipsPerS),
    B.map((b) => b.processClipsPerS),
  );
  const againstTimer = ratio(
    A.map((a) => a.clipsPerS),
    B.map((b) => b.clipsPerS),
  );
  summary.referenceClipsPerS = median(B.map((b) => b.clipsPerS));
  summary.medianRatio = median(likeForLike);
  summary.medianProcessRatio = median(processRatios);
  summary.medianEmbedAgainstTimerRatio = median(againstTimer);
  const rounds = (rs) => rs.map((r) => fmt(r)).join(', ');
  console.log(
    `reference: median ${fmt(summary.referenceClipsPerS, 3)} clips/s (its own timer, set-up excluded)`,
  );
  console.log(
    `median ratio framewise/reference, like for like (set-up excluded on both sides): ${fmt(summary.medianRatio)} (per round: ${rounds(likeForLike)})`,
  );
  console.log(
    `median ratio, whole process against whole process: ${fmt(summary.medianProcessRatio)} (per round: ${rounds(processRatios)})`,
  );
  const marginalRatios = A2.map((a2, i) => marginal(A[i], a2) / marginal(B[i], B2[i]));
  summary.marginalClipsPerS = {
    framewise: median(A2.map((a2, i) => marginal(A[i], a2))),
    reference: median(B2.map((b2, i) => marginal(B[i], b2))),
  };
  summary.medianMarginalRatio = median(marginalRatios);
  console.log(
    `median marginal clips/s (${list.length} more videos, whole processes, start-up cancelled): framewise ${fmt(summary.marginalClipsPerS.framewise, 3)}, reference ${fmt(summary.marginalClipsPerS.reference, 3)}`,
  );
  console.log(
    `median ratio, marginal: ${fmt(summary.medianMarginalRatio)} (per round: ${rounds(marginalRatios)})`,
  );
  console.log(
    `median ratio, framewise embed's whole process against the reference's own timer: ${fmt(summary.medianEmbedAgainstTimerRatio)} (per round: ${rounds(againstTimer)})`,
  );
  if (envA0) {
    const p0 = ratio(
      A0.map((a) => a.clipsPerS),
      B.map((b) => b.processClipsPerS),
    );
    const m0 = A02.map((x2, i) => marginal(A0[i], x2) / marginal(B[i], B2[i]));
    const cores = { single: median(A0.map((x) => x.cores)), doubled: median(A02.map((x) => x.cores)) };
    summary.vs = { env: vsEnv, medianProcessRatio: median(p0), medianMarginalRatio: median(m0), cores };
    const { medianProcessRatio: p, medianMarginalRatio: m } = summary.vs;
    console.log(
      `with ${vsEnv}: median ratio, whole process: ${fmt(p)} (per round: ${rounds(p0)}); marginal: ${fmt(m)} (per round: ${rounds(m0)})`,
    );
  }
  if (A[0].cpuPerClip && B[0].cpuPerClip) {
    summary.cpuPerClip = {
      framewise: median(A.map((a) => a.cpuPerClip)),
      reference: median(B.map((b) => b.cpuPerClip)),
    };
    console.log(
      `CPU-s per clip, whole process with children (steadier than wall time on a shared machine): framewise ${fmt(summary.cpuPerClip.framewise)}, reference ${fmt(summary.cpuPerClip.reference)} (its set-up included)`,
    );
  }
}

if (flag('sweep')) {
  // Decode/inference balance: alternate the grid, so drift hits every cell alike.
  const grid = [];
  for (const workers of [1, 2, 3]) for (const concurrency of [1, 2, 3]) grid.push({ workers, concurrency });
  const results = new Map(grid.map((g) => [`${g.workers}/${g.concurrency}`, []]));
  for (let i = 0; i < rounds; i += 1) {
    for (const g of grid) {
      const r = await framewiseRound([
        '--workers',
        String(g.workers),
        '--concurrency',
        String(g.concurrency),
      ]);
      results.get(`${g.workers}/${g.concurrency}`).push(r);
    }
  }
  console.log('sweep (median clips/s, peak RSS): workers x concurrency');
  for (const g of grid) {
    const rs = results.get(`${g.workers}/${g.concurrency}`);
    console.log(
      `  --workers ${g.workers} --concurrency ${g.concurrency}: ${fmt(median(rs.map((r) => r.clipsPerS)), 3)} clips/s, ${mib(Math.max(...rs.map((r) => r.peakSelf)))}`,
    );
  }
}

if (!flag('no-extras')) {
  const t = await backboneThroughput();
  const gflops = t.fps * GFLOP_PER_FRAME;
  const peak = cpu.cores * cpu.ghz * cpu.perCycle;
  const wasmPeak = cpu.cores * cpu.ghz * 16;
  console.log(
    `backbone: ${fmt(t.fps, 1)} frames/s on ${t.backend.name} (${t.backend.reason}) = ${fmt(gflops, 1)} GFLOP/s at ${GFLOP_PER_FRAME} GFLOP/frame`,
  );
  console.log(
    `  assumed peak: ${cpu.cores} cores x ${fmt(cpu.ghz)} GHz x ${cpu.perCycle} fp32 flop/cycle (${cpu.isa}) = ${fmt(peak, 0)} GFLOP/s -> ${fmt((100 * gflops) / peak, 1)}% of it; ` +
      `wasm SIMD128 has no FMA (x16 flop/cycle): ${fmt(wasmPeak, 0)} GFLOP/s -> ${fmt((100 * gflops) / wasmPeak, 1)}%`,
  );
  summary.backboneFps = t.fps;
  const c = await coldStart();
  console.log(
    `cold start to the first result (cached backbone, one video): ${fmt(c.first, 2)} s (process ${fmt(c.wall, 2)} s)`,
  );
  summary.coldStartS = c.first;
}
console.log(`summary: ${JSON.stringify(summary)}`);
