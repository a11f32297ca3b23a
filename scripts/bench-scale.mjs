#!/usr/bin/env node
/**
 * `npm run bench:scale`: the queue's cost. 2 `framewise worker`s on this machine against a
 * local run of the same videos, then what Redis carries per video, and on paper, throughput
 * as machines are added.
 *
 *   node scripts/bench-scale.mjs [--rounds 3] [--videos DIR] [--workers 2] [--concurrency 1]
 *
 * 1. The benchmark videos (scripts/make_bench_videos.sh, as bench:compare) copied into sets
 *    of 10 and 20 (copies, so each is its own job: job ids come from file identities).
 * 2. A redis-server on a free loopback port in a temp folder, and the workers, started once
 *    and left running, as a service would be (their start-up is not timed).
 * 3. Alternates, each round: local 10, remote 10, local 20, remote 20, every run a new
 *    `framewise embed --no-cache` process. Whole process: videos/s of the 20 sets. Marginal:
 *    10 / (t20 - t10) on each side, so start-up (the backbone's load on the local side, the
 *    queue client's on the other) cancels.
 * 4. Redis's own counters over one remote run of the 20: commands (round trips) and bytes in
 *    and out per video, CPU; the size of one result in Redis; its peak memory. From them:
 *    Redis memory for 10,000 videos at 16 x 1280 floats, with results removed once written
 *    (framewise) and if they were all kept.
 * 5. On paper: N machines of this kind as workers, against what the coordinator and Redis
 *    can carry, from the CPU each spends per video.
 *
 * Absolute numbers drift on shared machines; compare ratios from one run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cliArgs, ensureVideos, fmt, median, run, videoList } from './bench-lib.mjs';

const root = path.resolve(import.meta.dirname, '..');
const CLI = path.join(root, 'dist', 'cli', 'main.js');
const { value, positive } = cliArgs();
const rounds = positive('rounds', 3);
const nWorkers = positive('workers', 2);
const concurrency = positive('concurrency', 1);
const source = path.resolve(value('videos', path.join(os.tmpdir(), 'framewise-bench-videos')));

// ---- videos --------------------------------------------------------------------------
ensureVideos(source);
const work = mkdtempSync(path.join(os.tmpdir(), 'fw-bench-scale-'));
const sets = {};
for (const n of [10, 20]) {
  const dir = path.join(work, `set${n}`);
  mkdirSync(dir);
  const list = videoList(source);
  for (let i = 0; i < n; i++)
    copyFileSync(
      path.join(source, list[i % list.length]),
      path.join(dir, `v${String(i).padStart(2, '0')}-${list[i % list.length]}`),
    );
  sets[n] = dir;
}

// ---- redis ---------------------------------------------------------------------------
const port = await new Promise((resolve) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const p = server.address().port;
    server.close(() => resolve(p));
  });
});
const url = `redis://127.0.0.1:${port}`;
const redisDir = path.join(work, 'redis');
mkdirSync(redisDir);
const redis = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir],
  { stdio: 'ignore' },
);
redis.on('error', () => {
  console.error('redis-server is not installed: apt-get install -y redis-server');
  process.exit(1);
});
const cli = (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout;
for (let i = 0; cli('ping').trim() !== 'PONG'; i++) {
  if (i > 100) throw new Error('redis-server did not start');
  await new Promise((r) => setTimeout(r, 50));
}
const info = (section) =>
  Object.fromEntries(
    cli('info', section)
      .split('\r\n')
      .filter((l) => l.includes(':'))
      .map((l) => l.split(/:(.*)/s).slice(0, 2)),
  );

// ---- workers -------------------------------------------------------------------------
const workers = [];
const cleanup = () => {
  for (const w of workers) w.kill('SIGKILL');
  redis.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
for (let i = 0; i < nWorkers; i++) {
  const w = spawn(
    process.execPath,
    [CLI, 'worker', '--redis', url, '--no-cache', '--concurrency', String(concurrency)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  w.stderr.on('data', (c) => (err += c));
  await new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (/taking jobs/.test(err)) {
        clearInterval(t);
        resolve();
      } else if (w.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`worker failed:\n${err}`));
      }
    }, 50);
  });
  workers.push(w);
}
console.log(
  `${nWorkers} workers x concurrency ${concurrency} on ${os.availableParallelism()} cores; redis-server ${info('server').redis_version} on ${url}`,
);

// ---- rounds --------------------------------------------------------------------------
async function embed(n, remote) {
  const out = path.join(work, `out-${remote ? 'remote' : 'local'}-${n}.jsonl`);
  const args = [
    CLI,
    'embed',
    sets[n],
    '--out',
    out,
    '--force',
    '--no-cache',
    '--quiet',
    ...(remote ? ['--redis', url] : []),
  ];
  const r = await run(process.execPath, args);
  if (r.code !== 0)
    throw new Error(`framewise embed ${remote ? '--redis ' : ''}failed (${r.code}):\n${r.stderr}`);
  const lines = readFileSync(out, 'utf8').trim().split('\n').length;
  if (lines !== n) throw new Error(`${out}: ${lines} records, expected ${n}`);
  if (remote) coordinatorCpu[n].push(r.cpu);
  return r.wall;
}
const times = { local: { 10: [], 20: [] }, remote: { 10: [], 20: [] } };
const coordinatorCpu = { 10: [], 20: [] };
console.log('\nround | local 10 | remote 10 | local 20 | remote 20   (wall s, each a new process)');
for (let round = 1; round <= rounds; round++) {
  const row = [];
  for (const n of [10, 20]) {
    for (const side of ['local', 'remote']) {
      const t = await embed(n, side === 'remote');
      times[side][n].push(t);
      row.push(fmt(t));
    }
  }
  console.log(`${String(round).padStart(5)} | ${row.join(' | ')}`);
}
const whole = (side) => 20 / median(times[side][20]);
const marginal = (side) => median(times[side][20].map((t20, i) => 10 / (t20 - times[side][10][i])));
console.log(
  `\nwhole process, 20 videos: local ${fmt(whole('local'))} v/s, remote ${fmt(whole('remote'))} v/s: ${fmt(whole('remote') / whole('local'))}x`,
);
console.log(
  `marginal (20 minus 10):  local ${fmt(marginal('local'))} v/s, remote ${fmt(marginal('remote'))} v/s: ${fmt(marginal('remote') / marginal('local'))}x`,
);

// ---- what Redis carries ----------------------------------------------------------------
/** CPU seconds of a process and its waited-for children (ffmpeg), from /proc (clock ticks of 1/100 s). */
const procCpu = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
};
cli('config', 'resetstat');
const before = { ...info('stats'), ...info('cpu') };
const workerCpu0 = workers.map((w) => procCpu(w.pid));
const t0 = performance.now();
await run(process.execPath, [
  CLI,
  'embed',
  sets[20],
  '--out',
  path.join(work, 'stats.jsonl'),
  '--force',
  '--no-cache',
  '--quiet',
  '--redis',
  url,
]);
const wall = (performance.now() - t0) / 1000;
const after = { ...info('stats'), ...info('cpu') };
const calls = Object.entries(info('commandstats'))
  .map(([k, v]) => [k.replace('cmdstat_', ''), Number(/calls=(\d+)/.exec(v)?.[1] ?? 0)])
  .sort((a, b) => b[1] - a[1]);
const commands = calls.reduce((sum, [, n]) => sum + n, 0);
const bytesIn = Number(after.total_net_input_bytes) - Number(before.total_net_input_bytes);
const bytesOut = Number(after.total_net_output_bytes) - Number(before.total_net_output_bytes);
const redisCpu =
  Number(after.used_cpu_sys) +
  Number(after.used_cpu_user) -
  Number(before.used_cpu_sys) -
  Number(before.used_cpu_user);
const workersCpu = workers.reduce((s, w, i) => s + procCpu(w.pid) - workerCpu0[i], 0);
const memory = info('memory');
console.log(`\nper video, over one remote run of 20 (${fmt(wall)} s):`);
console.log(
  `  Redis commands (round trips, coordinator + workers + polls and pings over ${fmt(wall, 1)} s): ${fmt(commands / 20, 1)}; most: ${calls
    .slice(0, 6)
    .map(([k, n]) => `${k} ${fmt(n / 20, 1)}`)
    .join(', ')}`,
);
console.log(
  `  bytes into Redis ${fmt(bytesIn / 20 / 1024, 1)} KiB, out of it ${fmt(bytesOut / 20 / 1024, 1)} KiB (a result is ${(16 * 1280 * 4) / 1024} KiB of float32, base64 in JSON)`,
);
const coordMarginal = median(coordinatorCpu[20].map((c20, i) => (c20 - coordinatorCpu[10][i]) / 10));
console.log(
  `  CPU: workers ${fmt(workersCpu / 20, 3)} s (with ffmpeg), coordinator ${fmt(coordMarginal, 4)} s (marginal: 20 minus 10; its start-up ${fmt(median(coordinatorCpu[10]) - 10 * coordMarginal, 2)} s), Redis ${fmt((redisCpu / 20) * 1000, 2)} ms`,
);
console.log(
  `  Redis peak memory in the run: ${fmt(Number(memory.used_memory_peak) / 2 ** 20, 1)} MiB (at rest ${fmt(Number(memory.used_memory) / 2 ** 20, 1)} MiB)`,
);

// One result's size in Redis: a job added straight to a queue no coordinator collects.
const { Queue } = await import('bullmq');
const { jobData, jobId } = await import(path.join(root, 'dist', 'runners', 'protocol.js'));
const probeQueue = new Queue('bench-size', { connection: { url } });
const one = path.join(sets[10], videoList(sets[10])[0]);
const settings = { sampling: { kind: 'uniform', frames: 16 }, size: 224, fit: 'cover' };
const backboneId = JSON.parse(readFileSync(path.join(work, 'stats.jsonl'), 'utf8').split('\n')[0]).backbone;
const probeId = jobId({ path: one }, { path: one }, settings, backboneId);
await probeQueue.add('embed', jobData({ path: one }, settings, backboneId), { jobId: probeId });
const probeWorker = spawn(
  process.execPath,
  [CLI, 'worker', '--redis', url, '--no-cache', '--queue', 'bench-size'],
  { stdio: 'ignore' },
);
workers.push(probeWorker);
let resultBytes = 0;
for (let i = 0; i < 1200 && !resultBytes; i++) {
  await new Promise((r) => setTimeout(r, 100));
  if ((await probeQueue.getJobState(probeId)) === 'completed')
    resultBytes = Number(cli('memory', 'usage', `bull:bench-size:${probeId}`, 'samples', '0').trim());
}
await probeQueue.close();
// The events stream is at its cap of 300 entries by now (the rounds added far more): its size is its bound.
const eventsBytes = Number(cli('memory', 'usage', 'bull:framewise:events', 'samples', '0').trim()) || 0;
const window = 64; // the coordinator's window with up to 16 workers (4 per worker beyond)
console.log(
  `\nRedis memory for 10,000 videos at 16 x 1280 floats (one result in Redis: ${fmt(resultBytes / 1024, 1)} KiB):`,
);
console.log(
  `  framewise (results removed once written; at most the window of ${window} jobs and the events stream): at most ~${fmt((window * resultBytes + eventsBytes) / 2 ** 20, 1)} MiB, whatever the number of videos (with more than 16 workers the window is 4 per worker: +${fmt((4 * resultBytes) / 2 ** 20, 2)} MiB per worker, up to 1024 jobs)`,
);
console.log(`  if every result were kept: ${fmt((10_000 * resultBytes) / 2 ** 30, 2)} GiB`);
console.log(`  the events stream (capped at 300 entries): ${fmt(eventsBytes / 2 ** 20, 2)} MiB now`);

// ---- on paper ----------------------------------------------------------------------------
const perMachine = marginal('remote'); // videos/s of this 2-core machine's workers, start-up cancelled
const coordLimit = 1 / Math.max(coordMarginal, 1e-6);
const redisLimit = 20 / Math.max(redisCpu, 1e-6);
const netLimit = (125e6 * 0.7) / ((bytesIn + bytesOut) / 20); // 1 Gb/s at 70%
console.log(
  `\non paper: N machines like this one (${os.availableParallelism()} cores) running ${nWorkers} workers each:`,
);
console.log(
  `  limits: coordinator ${fmt(coordLimit, 0)} v/s (its CPU), Redis ${fmt(redisLimit, 0)} v/s (one core), a 1 Gb/s link to Redis ${fmt(netLimit, 0)} v/s`,
);
console.log('  machines | videos/s | 100,000 videos');
for (const n of [1, 2, 4, 8, 16, 32, 64, 128]) {
  const rate = Math.min(n * perMachine, coordLimit, redisLimit, netLimit);
  console.log(`  ${String(n).padStart(8)} | ${fmt(rate).padStart(8)} | ${fmt(100_000 / rate / 3600, 1)} h`);
}
process.exit(0);
