#!/usr/bin/env node
/**
 * `npm run bench`: the pipeline end to end over the benchmark videos made by
 * make_bench_videos.sh (ten 10 s, 30 fps H.264 clips), through the built CLI (`dist/`).
 *
 * Reports:
 *   - videos/s, clips/s and frames/s end to end (cold: a fresh cache folder);
 *   - backbone-only frames/s on the same frames (decoded once, then embedded in-process);
 *   - CPU utilisation: (user + sys of the CLI and its ffmpeg children) / wall / cores;
 *   - peak RSS (the CLI's process tree, sampled every 50 ms) for 10 videos and for 100
 *     (the set repeated through hard links);
 *   - the speed-up of the second, cached run.
 *
 *   node scripts/bench.mjs [--videos DIR] [--repeat 100] [--frames 16] [--json]
 *
 * Run `npm run build` first. The last line is the figures as JSON.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const REPEAT = Number(opt('repeat', 100));
const FRAMES = Number(opt('frames', 16));
const CORES = availableParallelism();
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
if (!existsSync(CLI)) {
  console.error('bench: dist/ is missing; run `npm run build` first');
  process.exit(2);
}
const FFMPEG = process.env.FFMPEG_PATH || require('@ffmpeg-installer/ffmpeg').path;

// ---------------------------------------------------------------------------------------
// Videos

const EXPECTED = [
  'c1_testsrc2',
  'c2_mandelbrot',
  'c3_life',
  'c4_testsrc2_noise',
  'c5_gradients',
  'c6_cellauto',
  'c7_testsrc_rot',
  'c8_mandel_noise',
  'hd_testsrc2_720p',
  'hd_testsrc2_720p_clean',
].map((n) => `${n}.mp4`);

/** Runs scripts/make_bench_videos.sh (the reference script, with a stand-in for sources this ffmpeg lacks) once. */
function makeVideos(dir) {
  if (!EXPECTED.every((f) => existsSync(join(dir, f)))) {
    const script = join(ROOT, 'scripts', 'make_bench_videos.sh');
    const r = spawnSync('bash', [script, dir, FFMPEG], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${script} failed (${r.status})`);
  }
  return readdirSync(dir)
    .filter((f) => f.endsWith('.mp4'))
    .sort();
}

function repeated(dir, files, n, target) {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (let i = 0; i < n; i++) {
    const file = files[i % files.length];
    const dest = join(target, `r${String(i).padStart(3, '0')}_${file}`);
    try {
      linkSync(join(dir, file), dest);
    } catch {
      copyFileSync(join(dir, file), dest);
    }
  }
  return target;
}

// ---------------------------------------------------------------------------------------
// Measuring a child process tree

const TICK = 100; // USER_HZ
function childTicks() {
  // Fields 16 and 17 of /proc/self/stat: cutime, cstime of waited-for descendants.
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return Number(fields[13]) + Number(fields[14]);
}

function treeRss(pid) {
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim();
        if (kids) stack.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      /* gone */
    }
  }
  return total;
}

function runCli(cliArgs) {
  return new Promise((done, fail) => {
    const before = childTicks();
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...cliArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, treeRss(child.pid))), 50);
    child.on('error', fail);
    child.on('close', (code) => {
      clearInterval(timer);
      const wall = (performance.now() - started) / 1000;
      const cpu = (childTicks() - before) / TICK;
      if (code !== 0 && code !== 1)
        return fail(new Error(`framewise ${cliArgs.join(' ')} exited ${code}\n${stderr}`));
      done({ wall, cpu, util: cpu / wall / CORES, peakRss: peak, stderr });
    });
  });
}

function countLines(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

// ---------------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'framewise-bench-'));
const videoDir = opt('videos', join(tmpdir(), 'framewise-bench-videos'));
const files = makeVideos(videoDir);
const mb = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
console.log(`bench: ${files.length} videos in ${videoDir}; ${CORES} cores; ${FRAMES} frames per clip`);

const common = ['--frames', String(FRAMES), '--quiet'];
const cache = join(work, 'cache');
const out1 = join(work, 'cold.jsonl');
const cold = await runCli(['embed', videoDir, '--out', out1, '--cache', cache, ...common]);
const records = countLines(out1);
const clips = records.reduce((n, r) => n + (r.clips?.length ?? 0), 0);
const frames = clips * FRAMES;
console.log(
  `cold:   ${cold.wall.toFixed(1)} s, ${(records.length / cold.wall).toFixed(2)} videos/s, ${(clips / cold.wall).toFixed(2)} clips/s, ${(frames / cold.wall).toFixed(1)} frames/s, CPU ${cold.util.toFixed(2)}, peak RSS ${mb(cold.peakRss)}`,
);

const cached = await runCli([
  'embed',
  videoDir,
  '--out',
  join(work, 'cached.jsonl'),
  '--cache',
  cache,
  ...common,
]);
console.log(
  `cached: ${cached.wall.toFixed(2)} s, speed-up ${(cold.wall / cached.wall).toFixed(1)}x (whole process: start, discovery, cache reads; the backbone is not loaded)`,
);

const big = repeated(videoDir, files, REPEAT, join(work, `x${REPEAT}`));
const many = await runCli(['embed', big, '--out', join(work, 'many.jsonl'), '--no-cache', ...common]);
console.log(
  `${REPEAT} videos: ${many.wall.toFixed(1)} s, ${(REPEAT / many.wall).toFixed(2)} videos/s, CPU ${many.util.toFixed(2)}, peak RSS ${mb(many.peakRss)} (${(many.peakRss / cold.peakRss).toFixed(2)}x the 10-video run)`,
);

// Backbone only, on the same frames: decode once, then time embedClips alone.
const { createFrameEmbedder, probe, planClips, extractClips } = await import(join(ROOT, 'dist', 'index.js'));
const decoded = [];
for (const file of files) {
  const path = join(videoDir, file);
  const info = await probe(path);
  decoded.push(
    ...(await extractClips(path, planClips(info, { kind: 'uniform', frames: FRAMES }), {
      size: 224,
      probe: info,
    })),
  );
}
const embedder = await createFrameEmbedder({ cacheDir: join(tmpdir(), 'framewise-bench-backbone') });
await embedder.embedClips(decoded[0].data, [1, FRAMES, 224, 224, 3]); // warm-up
const started = performance.now();
await Promise.all(decoded.map((clip) => embedder.embedClips(clip.data, [1, FRAMES, 224, 224, 3])));
const backboneWall = (performance.now() - started) / 1000;
await embedder.dispose();
const backboneFps = (decoded.length * FRAMES) / backboneWall;
console.log(
  `backbone only: ${backboneFps.toFixed(1)} frames/s on ${(embedder.backend ?? embedder.engine).name} (end to end is ${((frames / cold.wall / backboneFps) * 100).toFixed(0)}% of it)`,
);

const figures = {
  videos: records.length,
  clips,
  frames,
  cores: CORES,
  cold: {
    wallS: cold.wall,
    videosPerS: records.length / cold.wall,
    clipsPerS: clips / cold.wall,
    framesPerS: frames / cold.wall,
    cpuUtilisation: cold.util,
    peakRssBytes: cold.peakRss,
  },
  cached: { wallS: cached.wall, speedUp: cold.wall / cached.wall },
  many: {
    videos: REPEAT,
    wallS: many.wall,
    videosPerS: REPEAT / many.wall,
    cpuUtilisation: many.util,
    peakRssBytes: many.peakRss,
    rssRatio: many.peakRss / cold.peakRss,
  },
  backboneOnly: { framesPerS: backboneFps, backend: (embedder.backend ?? embedder.engine).name },
};
rmSync(work, { recursive: true, force: true });
console.log(JSON.stringify(figures));
