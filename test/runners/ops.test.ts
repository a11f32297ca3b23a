/**
 * A fleet an operator can run: `framewise status` during a run, `/metrics` in the Prometheus
 * text format, a coordinator that says why it waits on a killed worker's job, the eviction
 * policy check, a least-privilege ACL user and a TLS Redis with a private CA, each running a
 * whole batch. Real redis-servers, real `framewise worker`s (a tiny .onnx backbone: they
 * start at once), tiny videos.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPipeline, isErrorRecord, type ProgressEvent } from '../../src/index.js';
import { queueStatus } from '../../src/runners/index.js';
import { assertBuilt, jsonl, runCli, startCli } from '../cli/helpers.js';
import { COUNTER, fixture, linkScenes } from '../fixtures.js';
import { tempDir } from '../helpers.js';
import {
  describeWithRedis,
  killAll,
  skipRedis,
  startRedis,
  startWorkerCli,
  writePoolModel,
  type RedisServer,
  type WorkerChild,
} from './helpers.js';

const dir = tempDir('fw-ops-');
const videos = join(dir, 'videos');
const model = join(dir, 'pool.onnx');
const BACKBONE = ['--backbone', model, '--normalize', '0..1'];
const COMMON = [...BACKBONE, '--frames', '2', '--no-cache'];
let redis: RedisServer;
let admin: Redis;
const workers: WorkerChild[] = [];

async function worker(url: string, args: string[]): Promise<WorkerChild> {
  const w = await startWorkerCli(url, [...BACKBONE, '--jobs', '1', ...args]);
  workers.push(w);
  return w;
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Status = {
  counts: Record<string, number>;
  oldestWaitingMs: number | null;
  workers: Array<{
    name: string;
    presence?: { done: number; backbone: string; decoder: string; concurrency: number };
  }>;
  coordinators: Array<{ name: string; videosTotal: number }>;
};

/** `framewise status --json`, the command itself. */
async function statusCli(url: string, queue: string): Promise<Status> {
  const run = await runCli(['status', '--redis', url, '--queue', queue, '--json']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Status;
}

/** The same, from the library (no process to start: for the polls). */
async function status(url: string, queue: string, redisCa?: string): Promise<Status> {
  return (await queueStatus({ redis: url, queue, redisCa, timeoutMs: 5000 })) as unknown as Status;
}

/** Parses the Prometheus text format strictly: every line a comment or `name{labels} value`. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(
        line,
      );
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return samples;
}

async function scrape(port: string | number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

beforeAll(async () => {
  if (skipRedis) return;
  assertBuilt();
  linkScenes(videos, 4);
  await writePoolModel(model);
  redis = await startRedis();
  admin = new Redis(redis.url);
});

afterAll(async () => {
  await killAll(workers);
  admin?.disconnect();
  await redis?.dispose();
});

describeWithRedis('framewise status and --metrics-port', () => {
  it('status during a run shows the counts, the coordinator and the worker; /metrics parses with the documented names', async () => {
    const out = join(dir, 'status.jsonl');
    const run = startCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'ops',
      '--metrics-port',
      '0',
      ...COMMON,
    ]);
    let stderr = '';
    run.child.stderr!.on('data', (c) => (stderr += c));
    // No worker yet: the 4 jobs wait, and the coordinator is there.
    const waiting = await until('4 waiting jobs and a coordinator', async () => {
      const s = await status(redis.url, 'ops');
      return s.counts.waiting === 4 && s.coordinators.length === 1 ? s : undefined;
    });
    expect(waiting.counts).toEqual({ waiting: 4, active: 0, completed: 0, failed: 0, delayed: 0 });
    expect(waiting.oldestWaitingMs).toBeGreaterThanOrEqual(0);
    expect(waiting.workers).toEqual([]);
    expect(waiting.coordinators[0]).toMatchObject({
      name: `framewise@${waiting.coordinators[0].name.split('@')[1]}`,
      videosTotal: 4,
    });
    const coordinatorPort = /metrics at http:\/\/0\.0\.0\.0:(\d+)\/metrics/.exec(stderr)![1];
    const before = await scrape(coordinatorPort);
    expect(before.get('bullmq_job_count{queue="ops",state="waiting"}')).toBe(4);
    const text = await runCli(['status', '--redis', redis.url, '--queue', 'ops']);
    expect(text.stdout).toMatch(
      /^queue 'ops' at redis:\/\/127\.0\.0\.1:\d+\/?\njobs: 4 waiting, 0 active, 0 completed, 0 failed, 0 delayed; the oldest waiting for \d+s\nworkers: 0 /,
    );

    const w = await worker(redis.url, ['--queue', 'ops', '--metrics-port', '0']);
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expect(jsonl(readFileSync(out, 'utf8'))).toHaveLength(4);
    const after = await until('the worker to report 4 videos', async () => {
      const s = await status(redis.url, 'ops');
      return s.workers[0]?.presence?.done === 4 ? s : undefined;
    });
    expect(after.workers).toEqual([
      {
        name: w.name,
        presence: expect.objectContaining({
          backbone: expect.stringMatching(/^pool-/),
          concurrency: 1,
          done: 4,
          errors: 0,
        }),
      },
    ]);
    expect(after.coordinators).toEqual([]);
    const port = /metrics at http:\/\/0\.0\.0\.0:(\d+)\/metrics/.exec(w.log())![1];
    const m = await scrape(port);
    expect(m.get('framewise_videos_total{result="ok",code=""}')).toBe(4);
    expect(m.get('framewise_clips_total')).toBe(4);
    expect(m.get('framewise_frames_total')).toBe(8);
    expect(m.get('framewise_decode_seconds_count')).toBe(4);
    expect(m.get('framewise_backbone_seconds_count')).toBeGreaterThan(0);
    expect(m.get('framewise_job_seconds_count')).toBe(4);
    expect(m.get('framewise_jobs_in_hand')).toBe(0);
    expect(m.get('bullmq_job_count{queue="ops",state="completed"}')).toBe(0);
    expect(m.has('process_cpu_user_seconds_total')).toBe(true);
    expect(m.has('nodejs_heap_size_used_bytes')).toBe(true);
  });

  it("a worker killed with -9: the coordinator's progress says which job waits and how long until it is handed on", async () => {
    const victim = await worker(redis.url, ['--queue', 'stall', '--stall-timeout', '2']);
    const events: ProgressEvent[] = [];
    const pipeline = await createPipeline({
      backbone: model,
      normalize: '0..1',
      sampling: 'fps:24',
      cache: false,
      remote: { redis: redis.url, queue: 'stall' },
    });
    const results = (async () => {
      const got = [];
      for await (const r of pipeline.embed([fixture(COUNTER.path)], { onProgress: (e) => events.push(e) }))
        got.push(r);
      return got;
    })();
    await until(
      'the victim to hold the job',
      async () => ((await admin.lrange('bull:stall:active', 0, -1)).length > 0 ? true : undefined),
      60_000,
    );
    victim.child.kill('SIGKILL');
    const rescuer = worker(redis.url, ['--queue', 'stall', '--stall-timeout', '2']);
    const wait = await until(
      'the progress to say why it waits',
      () => events.find((e) => e.queue?.waitingOn)?.queue,
    );
    expect(wait.waitingOn).toEqual({
      path: fixture(COUNTER.path),
      jobId: expect.stringMatching(/^fw-/),
      worker: victim.name,
      handedOnInMs: expect.any(Number),
    });
    expect(wait.waitingOn!.handedOnInMs).toBeLessThanOrEqual(4000);
    await rescuer;
    const got = await results;
    await pipeline.close();
    expect(got).toHaveLength(1);
    expect(isErrorRecord(got[0])).toBe(false);
  });
});

describeWithRedis('framewise worker --jobs', () => {
  it('--concurrency, the old spelling, still sets the jobs at once, with a one-line notice on stderr', async () => {
    const NOTICE =
      /^framewise worker: `--concurrency` is the old spelling of `--jobs` for a worker; use `--jobs`$/m;
    const w = await startWorkerCli(redis.url, [...BACKBONE, '--queue', 'alias', '--concurrency', '3']);
    workers.push(w);
    const seen = await until('the worker on the status', async () => {
      const s = await status(redis.url, 'alias');
      return s.workers[0]?.presence ? s : undefined;
    });
    expect(seen.workers[0].presence?.concurrency).toBe(3);
    expect(w.log().match(new RegExp(NOTICE, 'gm'))).toHaveLength(1);
    const both = await runCli([
      'worker',
      '--redis',
      redis.url,
      '--root',
      dir,
      '--jobs',
      '2',
      '--concurrency',
      '2',
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/`--jobs` and `--concurrency` conflict: give `--jobs` only/);
  });
});

describeWithRedis('Redis done right', () => {
  it('maxmemory-policy other than noeviction: a warning that says why; --strict-redis refuses it', async () => {
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const strict = await runCli([
        'worker',
        '--redis',
        redis.url,
        '--queue',
        'evict',
        '--root',
        dir,
        '--strict-redis',
        ...BACKBONE,
      ]);
      expect(strict.code).toBe(1);
      expect(strict.stderr).toMatch(
        /has maxmemory-policy allkeys-lru: under memory pressure it may evict BullMQ's jobs and locks .*--strict-redis refuses it/,
      );
      const coordinator = await runCli([
        'embed',
        videos,
        '--out',
        join(dir, 'evict.jsonl'),
        '--redis',
        redis.url,
        '--queue',
        'evict',
        '--strict-redis',
        ...COMMON,
      ]);
      expect(coordinator.code).toBe(1);
      expect(coordinator.stderr).toMatch(/maxmemory-policy allkeys-lru.*--strict-redis refuses it/);
      const warned = await worker(redis.url, ['--queue', 'evict']);
      expect(warned.log()).toMatch(
        /\[FRAMEWISE_REDIS_EVICTION\] Warning: Redis at .* has maxmemory-policy allkeys-lru: .*set `maxmemory-policy noeviction`/,
      );
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('a least-privilege ACL user runs a whole batch, and can do nothing else', async () => {
    const rules = readFileSync(join(import.meta.dirname, '../../docs/scale-out.md'), 'utf8')
      .match(/^ACL SETUSER framewise (.+)$/m)![1]
      .replaceAll('nightly', 'acl');
    await admin.call('ACL', 'SETUSER', 'framewise', ...rules.replace('>CHANGE-ME', '>s3cret').split(' '));
    const url = redis.url.replace('redis://', 'redis://framewise:s3cret@');
    await worker(url, ['--queue', 'acl']);
    const out = join(dir, 'acl.jsonl');
    const run = await runCli(['embed', videos, '--out', out, '--redis', url, '--queue', 'acl', ...COMMON]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/NOPERM|Warning/);
    expect(jsonl<{ error?: unknown }>(readFileSync(out, 'utf8')).filter((r) => !r.error)).toHaveLength(4);
    expect((await statusCli(url, 'acl')).workers).toHaveLength(1);
    const user = new Redis(url);
    try {
      await expect(user.get('bull:other:x')).rejects.toThrow(/NOPERM/);
      await expect(user.keys('*')).rejects.toThrow(/NOPERM/);
      await expect(user.config('GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
      await expect(user.flushall()).rejects.toThrow(/NOPERM/);
    } finally {
      user.disconnect();
    }
  });

  it('rediss:// with --redis-ca: a TLS Redis with a private CA runs a whole batch', async () => {
    const tls = join(dir, 'tls');
    const openssl = (...args: string[]): void =>
      void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    execFileSync('mkdir', ['-p', tls]);
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=framewise test CA',
      '-keyout',
      join(tls, 'ca.key'),
      '-out',
      join(tls, 'ca.pem'),
    );
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      join(tls, 'server.key'),
      '-out',
      join(tls, 'server.csr'),
    );
    writeFileSync(join(tls, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    openssl(
      'x509',
      '-req',
      '-in',
      join(tls, 'server.csr'),
      '-CA',
      join(tls, 'ca.pem'),
      '-CAkey',
      join(tls, 'ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      join(tls, 'ext.cnf'),
      '-out',
      join(tls, 'server.pem'),
    );
    const secure = await startRedis({
      tls: { cert: join(tls, 'server.pem'), key: join(tls, 'server.key'), ca: join(tls, 'ca.pem') },
    });
    try {
      expect(secure.url).toMatch(/^rediss:\/\/localhost:\d+$/);
      const ca = ['--redis-ca', join(tls, 'ca.pem')];
      await worker(secure.url, ['--queue', 'tls', ...ca]);
      const out = join(dir, 'tls.jsonl');
      const run = await runCli([
        'embed',
        videos,
        '--out',
        out,
        '--redis',
        secure.url,
        '--queue',
        'tls',
        ...ca,
        ...COMMON,
      ]);
      expect(run.code, run.stderr).toBe(0);
      expect(jsonl(readFileSync(out, 'utf8'))).toHaveLength(4);
      expect((await status(secure.url, 'tls', ca[1])).workers).toHaveLength(1);
      // Without the CA, the server's certificate is not trusted.
      await expect(queueStatus({ redis: secure.url, queue: 'tls', timeoutMs: 1000 })).rejects.toThrow(
        /has not answered for 1 s \(.*(self-signed|unable to verify|certificate)/i,
      );
    } finally {
      await killAll(workers.splice(0));
      await secure.dispose();
    }
  });
});
