#!/usr/bin/env node
/**
 * `npm run soak`: faults as figures. Generates 50 small videos and a manifest of three spans
 * of each of 20 of them, then, round after round, starts two writers of one output at once
 * (`framewise embed`, or `classify` with the sample model; over the folder, or over the
 * spans), checks that exactly one of them runs and the other is refused naming it, kills the
 * one that runs at a random moment with SIGINT, SIGTERM or SIGKILL, and runs the same
 * command with `--resume` to the end. After every round each unit of work (a path and its
 * span) must appear exactly once, every line must be complete JSON, and no good video may
 * have an error record. Not part of `npm test`.
 *
 *   node scripts/soak.mjs [--rounds 20] [--seed 1]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import seedrandom from 'seedrandom';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('rounds', 20);
const random = seedrandom(String(arg('seed', 1)));
const ffmpeg = process.env.FFMPEG_PATH || createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg').path;

const work = mkdtempSync(join(tmpdir(), 'fw-soak-'));
const videos = join(work, 'videos');
mkdirSync(videos);
const sources = ['testsrc2', 'smptebars', 'rgbtestsrc', 'mandelbrot', 'life'];
for (let i = 0; i < 50; i++) {
  const src = `${sources[i % sources.length]}=s=96x64:r=12`;
  const r = spawnSync(ffmpeg, [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    src,
    '-t',
    String(1 + (i % 3)),
    '-pix_fmt',
    'yuv420p',
    '-c:v',
    'libx264',
    '-threads',
    '1',
    join(videos, `v${String(i).padStart(2, '0')}.mp4`),
  ]);
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}
const all = readdirSync(videos)
  .map((v) => join(videos, v))
  .sort();
// Three overlapping spans of each of 20 videos (every video is at least 1 s long).
const spans = join(work, 'spans.csv');
const SPANS = [
  [0, 0.5],
  [0.25, 0.75],
  [0.5, 1],
];
writeFileSync(
  spans,
  `path,label,start,end\n${all
    .slice(0, 20)
    .flatMap((v) => SPANS.map(([a, b]) => `${v},x,${a},${b}`))
    .join('\n')}\n`,
);
const unit = (r) => `${r.path}|${r.start ?? ''}|${r.end ?? ''}`;
const expectedOf = (manifest) =>
  (manifest
    ? all.slice(0, 20).flatMap((v) => SPANS.map(([a, b]) => unit({ path: v, start: a, end: b })))
    : all.map((v) => unit({ path: v }))
  ).sort();

function run(args, killAfterMs, signal) {
  return start(args, killAfterMs, signal).done;
}

function start(args, killAfterMs, signal) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const done = new Promise((resolveRun) => {
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill(signal), killAfterMs);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolveRun({ code, signal: sig, stderr, pid: child.pid });
    });
  });
  return { child, done };
}

/** After `ms`, sends `signal` to the one of `writers` that holds the output's lock (the one running). */
async function killLockHolder(writers, out, ms, signal) {
  await new Promise((r) => setTimeout(r, ms));
  for (
    let i = 0;
    i < 100 && writers.some((w) => w.child.exitCode === null && w.child.signalCode === null);
    i++
  ) {
    let pid;
    try {
      pid = JSON.parse(readFileSync(`${out}.lock`, 'utf8')).pid;
    } catch {
      await new Promise((r) => setTimeout(r, 50)); // not taken yet
      continue;
    }
    writers.find((w) => w.child.pid === pid)?.child.kill(signal);
    return;
  }
}

const t0 = performance.now();
let kills = 0;
let failures = 0;
for (let round = 1; round <= rounds; round++) {
  const classify = round % 2 === 0;
  const manifest = round % 4 >= 2; // rounds 2, 3 mod 4: the spans
  const input = manifest ? spans : videos;
  const expected = expectedOf(manifest);
  const out = join(work, `round-${round}.jsonl`);
  const args = classify
    ? [
        'classify',
        input,
        '--model',
        join(ROOT, 'samples', 'model'),
        '--out',
        out,
        '--frames',
        '4',
        '--quiet',
        '--no-cache',
      ]
    : ['embed', input, '--out', out, '--frames', '4', '--quiet', '--no-cache'];
  const signal = ['SIGINT', 'SIGTERM', 'SIGKILL'][Math.floor(random() * 3)];
  const after = 300 + Math.floor(random() * 4000); // a run of the 50 videos takes about 4-8 s here
  // Two writers of one output at once (as two `--resume` runs): one runs, the other is refused naming it.
  const started = [start([...args, '--resume']), start([...args, '--resume'])];
  await killLockHolder(started, out, after, signal);
  const writers = await Promise.all(started.map((w) => w.done));
  const refused = writers.filter(
    (w) => w.code === 2 && /being written by another framewise run \(pid \d+/.test(w.stderr),
  );
  const killed = writers.find((w) => !refused.includes(w)) ?? writers[0];
  let problem =
    refused.length === 1 && refused[0].stderr.includes(`pid ${killed.pid}`)
      ? ''
      : `two writers: ${refused.length} refused (${writers.map((w) => w.code ?? w.signal).join(', ')})`;
  if (killed.code !== 0 || killed.signal) kills += 1;
  const resumed = await run([...args, '--resume']);
  try {
    const text = readFileSync(out, 'utf8');
    if (!text.endsWith('\n')) problem ||= 'the output does not end with a newline';
    const records = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const units = records.map(unit).sort();
    const errors = records.filter((r) => r.error);
    if (resumed.code !== 0)
      problem ||= `--resume exited ${resumed.code}: ${resumed.stderr.trim().split('\n').pop()}`;
    if (errors.length > 0) problem ||= `${errors.length} error records (${errors[0].error.code})`;
    if (JSON.stringify(units) !== JSON.stringify(expected))
      problem ||= `${units.length} records for ${expected.length} units (${new Set(units).size} distinct)`;
  } catch (error) {
    problem ||= `unreadable output: ${error.message}`;
  }
  if (problem) failures += 1;
  console.log(
    `round ${round}: ${classify ? 'classify' : 'embed'} ${manifest ? 'spans' : 'folder'}, two writers, ${signal} after ${after} ms -> exit ${killed.code ?? killed.signal}; resume ${problem ? `FAILED: ${problem}` : 'ok'}`,
  );
}
const seconds = (performance.now() - t0) / 1000;
console.log(
  `soak: ${rounds} rounds (two writers each; half over spans), ${kills} runs killed mid-way, ${rounds - failures} intact after --resume, ${failures} not; ${seconds.toFixed(0)} s`,
);
rmSync(work, { recursive: true, force: true });
process.exit(failures > 0 ? 1 : 0);
