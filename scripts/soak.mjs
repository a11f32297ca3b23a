#!/usr/bin/env node
/**
 * `npm run soak`: faults as figures. Generates 50 small videos, then, round after round,
 * starts `framewise embed` (odd rounds: `classify` with the sample model), kills it at a
 * random moment with SIGINT, SIGTERM or SIGKILL, and runs the same command with `--resume`
 * to the end. After every round each video must appear exactly once, every line must be
 * complete JSON, and no good video may have an error record. Not part of `npm test`.
 *
 *   node scripts/soak.mjs [--rounds 20] [--seed 1]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
  const r = spawnSync(ffmpeg, ['-v', 'error', '-f', 'lavfi', '-i', src, '-t', String(1 + (i % 3)), '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-threads', '1', join(videos, `v${String(i).padStart(2, '0')}.mp4`)]);
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}
const expected = readdirSync(videos).map((v) => join(videos, v)).sort();

function run(args, killAfterMs, signal) {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill(signal), killAfterMs);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      done({ code, signal: sig, stderr });
    });
  });
}

const t0 = performance.now();
let kills = 0;
let failures = 0;
for (let round = 1; round <= rounds; round++) {
  const classify = round % 2 === 0;
  const out = join(work, `round-${round}.jsonl`);
  const args = classify
    ? ['classify', videos, '--model', join(ROOT, 'samples', 'model'), '--out', out, '--frames', '4', '--quiet', '--no-cache']
    : ['embed', videos, '--out', out, '--frames', '4', '--quiet', '--no-cache'];
  const signal = ['SIGINT', 'SIGTERM', 'SIGKILL'][Math.floor(random() * 3)];
  const after = 300 + Math.floor(random() * 4000); // a run of the 50 videos takes about 4-8 s here
  const killed = await run(args, after, signal);
  if (killed.code !== 0 || killed.signal) kills += 1;
  const resumed = await run([...args, '--resume']);
  let problem = '';
  try {
    const text = readFileSync(out, 'utf8');
    if (!text.endsWith('\n')) problem = 'the output does not end with a newline';
    const records = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const paths = records.map((r) => r.path).sort();
    const errors = records.filter((r) => r.error);
    if (resumed.code !== 0) problem ||= `--resume exited ${resumed.code}: ${resumed.stderr.trim().split('\n').pop()}`;
    if (errors.length > 0) problem ||= `${errors.length} error records (${errors[0].error.code})`;
    if (JSON.stringify(paths) !== JSON.stringify(expected)) problem ||= `${paths.length} records for ${expected.length} videos (${new Set(paths).size} distinct)`;
  } catch (error) {
    problem ||= `unreadable output: ${error.message}`;
  }
  if (problem) failures += 1;
  console.log(`round ${round}: ${classify ? 'classify' : 'embed'}, ${signal} after ${after} ms -> exit ${killed.code ?? killed.signal}; resume ${problem ? `FAILED: ${problem}` : 'ok'}`);
}
const seconds = (performance.now() - t0) / 1000;
console.log(`soak: ${rounds} rounds, ${kills} runs killed mid-way, ${rounds - failures} intact after --resume, ${failures} not; ${seconds.toFixed(0)} s`);
rmSync(work, { recursive: true, force: true });
process.exit(failures > 0 ? 1 : 0);
