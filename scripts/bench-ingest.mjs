#!/usr/bin/env node
/**
 * Ingest benchmark (`npm run bench:ingest`): the time to sample 16 frames at 224x224
 * (probe + plan + extract, the library's defaults) against the time ffmpeg takes to decode
 * the whole file to null, on
 *   - a 10 s 640x360 30 fps H.264 clip (target: at most 1.3x the full decode), and
 *   - a 10-minute 640x360 30 fps H.264 clip (target: at most 0.1x the full decode).
 * It also times both extraction strategies on each video, and from the long one derives the
 * gap between planned frames above which seeking beats decoding (extract.ts SEEK_MIN_GAP_S).
 *
 * Videos are made once into $FRAMEWISE_BENCH_DIR or <tmpdir>/framewise-bench-v1 (x264 at
 * its default keyframe interval, 250 frames). Imports the built library from dist/.
 *
 *   node scripts/bench-ingest.mjs [--runs N] [--json] [--all]
 *
 * --all also times a forced single decode pass over the 10-minute video (about as long as
 * its full decode). Making the 10-minute video the first time takes a few minutes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const dist = join(import.meta.dirname, '..', 'dist', 'index.js');
if (!existsSync(dist)) {
  process.stderr.write('bench-ingest: dist/ is missing; run `npm run build` first\n');
  process.exit(2);
}
const { probe, planClips, extractClips } = await import(dist);
const { resolveBinaries } = await import(
  join(import.meta.dirname, '..', 'dist', 'ingest', 'decoders', 'cli', 'ffmpeg.js')
);

const argv = process.argv.slice(2);
const runs = argv.includes('--runs') ? Number(argv[argv.indexOf('--runs') + 1]) : 3;
const asJson = argv.includes('--json');
const { ffmpeg } = resolveBinaries();
const dir = process.env.FRAMEWISE_BENCH_DIR || join(tmpdir(), 'framewise-bench-v1');
mkdirSync(dir, { recursive: true });

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpeg, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`ffmpeg ${args.join(' ')}: ${err.slice(-500)}`)),
    );
  });
}

async function make(name, seconds, preset) {
  const out = join(dir, name);
  if (existsSync(out)) return out;
  process.stderr.write(`bench-ingest: making ${out} (${seconds} s)...\n`);
  const tmp = `${out}.partial.mp4`;
  await run([
    '-y',
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=s=640x360:r=30:d=${seconds}`,
    '-vf',
    'noise=alls=10:allf=t',
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    '-preset',
    preset,
    '-crf',
    '23',
    '-an',
    tmp,
  ]);
  renameSync(tmp, out);
  return out;
}

async function time(fn) {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function median(n, fn) {
  const times = [];
  for (let i = 0; i < n; i++) times.push(await time(fn));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const fullDecode = (path) => run(['-v', 'error', '-nostdin', '-i', path, '-map', '0:v:0', '-f', 'null', '-']);
const sample16 = async (path, strategy) => {
  const p = await probe(path);
  const clips = await extractClips(path, planClips(p, { kind: 'uniform', frames: 16 }), {
    probe: p,
    size: 224,
    strategy,
  });
  if (clips[0].shape[0] !== 16 || clips[0].shape[1] !== 224) throw new Error('bad shape');
};

const short = await make('short-10s-640x360.mp4', 10, 'medium');
const long = await make('long-10min-640x360.mp4', 600, 'veryfast');

const results = {};
for (const [name, path, longRuns] of [
  ['short_10s', short, runs],
  ['long_10min', long, 1],
]) {
  const n = name === 'short_10s' ? runs : longRuns;
  const full = await median(n, () => fullDecode(path));
  const auto = await median(runs, () => sample16(path, 'auto'));
  const seek = await median(runs, () => sample16(path, 'seek'));
  // Forcing a decode pass over the long video costs as much as its full decode: only with --all.
  const decode =
    name === 'short_10s'
      ? await median(runs, () => sample16(path, 'decode'))
      : argv.includes('--all')
        ? await median(1, () => sample16(path, 'decode'))
        : NaN;
  results[name] = {
    full_decode_s: +full.toFixed(3),
    sample16_auto_s: +auto.toFixed(3),
    sample16_decode_s: +decode.toFixed(3),
    sample16_seek_s: +seek.toFixed(3),
    ratio_auto: +(auto / full).toFixed(3),
    target: name === 'short_10s' ? 1.3 : 0.1,
  };
  results[name].pass = results[name].ratio_auto <= results[name].target;
}
// Break-even gap: one seek costs seek_s/16; decoding runs at duration/full seconds of video per second.
const perSeek = results.long_10min.sample16_seek_s / 16;
const videoPerSecond = 600 / results.long_10min.full_decode_s;
results.seek_break_even_gap_s = +(perSeek * videoPerSecond).toFixed(2);

if (asJson) {
  console.log(JSON.stringify(results, null, 2));
} else {
  for (const [name, r] of Object.entries(results)) {
    if (typeof r !== 'object') continue;
    console.log(
      `${name}: full decode ${r.full_decode_s.toFixed(3)} s | 16 frames @224: auto ${r.sample16_auto_s.toFixed(3)} s ` +
        `(decode ${Number.isNaN(r.sample16_decode_s) ? 'n/a' : r.sample16_decode_s.toFixed(3)} s, seek ${r.sample16_seek_s.toFixed(3)} s) | ratio ${r.ratio_auto.toFixed(3)}x ` +
        `(target <= ${r.target}x: ${r.pass ? 'PASS' : 'FAIL'})`,
    );
  }
  console.log(
    `seeking beats decoding when planned frames are more than ~${results.seek_break_even_gap_s} s apart`,
  );
}
