/**
 * Runs across machines, for real: a redis-server, `framewise worker` child processes, the
 * built CLI as the coordinator, and the faults users meet: a worker killed with -9, the
 * coordinator killed, Redis restarted or gone, a worker with another backbone, a job that
 * kills its workers. Every video must come out exactly once, equal to a local run.
 */
import { Queue } from 'bullmq';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COUNTER, fixture, linkScenes } from '../fixtures.js';
import { assertBuilt, jsonl, runCli, startCli, waitForLines, type CliRun } from '../cli/helpers.js';
import { serveFiles } from '../serve.js';
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
import { tempDir } from '../helpers.js';

type Row = {
  path: string;
  backbone?: string;
  clips?: Array<{ embedding: number[] }>;
  error?: { code: string; message: string };
};

const dir = tempDir('fw-remote-');
const videos = join(dir, 'videos');
const COMMON = ['--frames', '4', '--no-cache', '--quiet'];
let redis: RedisServer;
let local: Map<string, number[]>;
const workers: WorkerChild[] = [];
const queues: Queue[] = [];

function queue(name: string): Queue {
  const q = new Queue(name, { connection: { url: redis.url, maxRetriesPerRequest: null } });
  q.on('error', () => undefined);
  queues.push(q);
  return q;
}

async function worker(name: string, args: string[] = []): Promise<WorkerChild> {
  const w = await startWorkerCli(redis.url, [
    '--queue',
    name,
    '--stall-timeout',
    '3',
    '--jobs',
    '1',
    ...args,
  ]);
  workers.push(w);
  return w;
}

/** Waits until `w` holds a job of `q`. */
async function holding(q: Queue, w: WorkerChild, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await q.getActive()).some((job) => job.processedBy === w.name)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${w.name} took no job in ${timeoutMs} ms`);
}

/** Every video of the folder exactly once, equal to the local run within 1e-4. */
function expectAllOnce(out: string): Row[] {
  const rows = jsonl<Row>(readFileSync(out, 'utf8'));
  expect(rows.map((r) => r.path).sort()).toEqual([...local.keys()].sort());
  for (const row of rows) {
    expect(row.error, row.path).toBeUndefined();
    const want = local.get(row.path)!;
    const got = row.clips![0].embedding;
    expect(got.length).toBe(want.length);
    expect(Math.max(...got.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-4);
  }
  return rows;
}

beforeAll(async () => {
  assertBuilt();
  if (skipRedis) return;
  linkScenes(videos, 12);
  redis = await startRedis();
  const out = join(dir, 'local.jsonl');
  const run = await runCli(['embed', videos, '--out', out, ...COMMON]);
  expect(run.code, run.stderr).toBe(0);
  local = new Map(jsonl<Row>(readFileSync(out, 'utf8')).map((r) => [r.path, r.clips![0].embedding]));
});

afterAll(async () => {
  await killAll(workers);
  await Promise.allSettled(queues.map((q) => q.close()));
  await redis?.dispose();
});

describeWithRedis('framewise embed --redis with framewise worker', () => {
  it('3 workers, one killed with -9 mid-job: every video exactly once, equal to a local run', async () => {
    const q = queue('kill9');
    const [victim, ...rest] = await Promise.all([worker('kill9'), worker('kill9'), worker('kill9')]);
    const out = join(dir, 'kill9.jsonl');
    const run = startCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'kill9',
      ...COMMON,
    ]);
    await holding(q, victim);
    victim.child.kill('SIGKILL');
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expectAllOnce(out);
    // Results leave Redis once written.
    const counts = await q.getJobCounts('waiting', 'active', 'completed', 'failed');
    expect(counts).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 });
    await killAll(rest);
  });

  it('a worker decodes in the decode workers, as a local run does: the same results, and SIGTERM closes them', async () => {
    queue('pooled');
    const w = await startWorkerCli(
      redis.url,
      ['--queue', 'pooled', '--concurrency', '2', '--decoder', 'libav'],
      { NODE_DEBUG: 'framewise' },
    );
    workers.push(w);
    const out = join(dir, 'pooled.jsonl');
    const run = await runCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'pooled',
      ...COMMON,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expectAllOnce(out);
    expect(w.log()).toMatch(/decode pool: worker \d+ started \(1 of 2\)/);
    w.child.kill('SIGTERM');
    const stopped = await w.done;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/decode pool: worker \d+ exited with code 0/);
  });

  it('a bad input is an error record, not a retry; a path missing on the worker names its host', async () => {
    const q = queue('bad');
    await worker('bad');
    const junk = join(dir, 'junk.mp4');
    writeFileSync(junk, 'this is not a video');
    const manifest = join(dir, 'bad.csv');
    writeFileSync(
      manifest,
      `path,label\n${join(videos, readdirSync(videos)[0])},a\n${junk},b\n${join(dir, 'nowhere.mp4')},c\n`,
    );
    const out = join(dir, 'bad.jsonl');
    const run = await runCli([
      'embed',
      manifest,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'bad',
      '--frames',
      '4',
      '--no-cache',
    ]);
    expect(run.code, run.stderr).toBe(1);
    const rows = jsonl<Row>(readFileSync(out, 'utf8'));
    expect(rows.map((r) => r.error?.code ?? 'ok')).toEqual(['ok', 'NOT_A_VIDEO', 'ENOENT']);
    expect(rows[2].error!.message).toContain(`on worker host ${hostname()}`);
    expect(run.stderr).toMatch(/1 ok, 2 failed \(ENOENT: 1, NOT_A_VIDEO: 1\)/);
    expect(await q.getJobCounts('waiting', 'active', 'completed', 'failed')).toEqual({
      waiting: 0,
      active: 0,
      completed: 0,
      failed: 0,
    });
  });

  it('the coordinator killed with -9, then --resume: nothing lost, nothing twice', async () => {
    const q = queue('coord');
    await worker('coord');
    const out = join(dir, 'coord.jsonl');
    const args = ['embed', videos, '--out', out, '--redis', redis.url, '--queue', 'coord', ...COMMON];
    const first = startCli(args);
    await waitForLines(out, 3, 120_000);
    first.child.kill('SIGKILL');
    await first.done;
    const written = jsonl<Row>(readFileSync(out, 'utf8')).length;
    expect(written).toBeLessThan(12);
    const resumed = await runCli([...args.slice(0, -1), '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`${12 - written} ok, 0 failed, ${written} skipped`));
    expectAllOnce(out);
    const counts = await q.getJobCounts('waiting', 'active', 'failed');
    expect(counts).toEqual({ waiting: 0, active: 0, failed: 0 });
  });

  it('Ctrl-C with no worker: the progress says so, waiting jobs are removed, exit 130; --resume with a worker carries on', async () => {
    const q = queue('none');
    const out = join(dir, 'none.jsonl');
    const run = startCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'none',
      '--frames',
      '4',
      '--no-cache',
    ]);
    let stderr = '';
    run.child.stderr!.on('data', (c) => (stderr += c));
    const until = Date.now() + 30_000;
    while (!/no worker connected/.test(stderr) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toMatch(/0\/12 videos .*no worker connected: start `framewise worker --redis URL`/);
    expect(await q.getWaitingCount()).toBeGreaterThan(0);
    run.child.kill('SIGINT');
    const done = await run.done;
    expect(done.code).toBe(130);
    expect(done.stderr).toMatch(/\(interrupted\)/);
    expect(await q.getJobCounts('waiting', 'active', 'completed', 'failed')).toEqual({
      waiting: 0,
      active: 0,
      completed: 0,
      failed: 0,
    });
    expect(existsSync(out)).toBe(false); // no record: the output is opened with the first one
    // A worker comes; --resume carries on.
    await worker('none');
    const resumed = await runCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'none',
      ...COMMON,
      '--resume',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expectAllOnce(out);
  });

  it('Redis restarted mid-run (its data lost): workers and coordinator reconnect, every video once', async () => {
    await Promise.all([worker('restart'), worker('restart')]);
    const out = join(dir, 'restart.jsonl');
    const run = startCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'restart',
      ...COMMON,
    ]);
    await waitForLines(out, 2, 120_000);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expectAllOnce(out);
  });

  it('Redis gone past --redis-timeout: coordinator and worker exit 1 with the reason; --resume then finishes', async () => {
    const w = await worker('gone', ['--redis-timeout', '3']);
    const out = join(dir, 'gone.jsonl');
    const args = [
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'gone',
      '--redis-timeout',
      '3',
      ...COMMON,
    ];
    const run = startCli(args);
    await waitForLines(out, 2, 120_000);
    await redis.stop();
    const [coordinator, gone]: CliRun[] = await Promise.all([run.done, w.done]).finally(() => redis.start());
    expect(coordinator.code).toBe(1);
    expect(coordinator.stderr).toMatch(
      /Redis at redis:\/\/127\.0\.0\.1:\d+\/? has not answered for 3 s .*--resume/,
    );
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/has not answered for 3 s/);
    const written = jsonl<Row>(readFileSync(out, 'utf8')); // every line whole
    expect(new Set(written.map((r) => r.path)).size).toBe(written.length);
    await worker('gone');
    const resumed = await runCli([...args.slice(0, -1), '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expectAllOnce(out);
  });

  it('a worker with another backbone refuses the job; the coordinator stops with both ids', async () => {
    const model = join(dir, 'pool.onnx');
    await writePoolModel(model);
    const w = await worker('other', ['--backbone', model, '--normalize', '0..1']);
    const out = join(dir, 'other.jsonl');
    const run = await runCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'other',
      ...COMMON,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `${w.name} runs backbone pool-\\w+ but job fw-\\w+ \\(.+\\) needs mobilenet_v2-\\w+: start the workers with the coordinator's --backbone`,
      ),
    );
    expect(existsSync(out)).toBe(false); // no record: the output is opened with the first one
    expect(await queue('other').getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 0 });
  });

  it('a job whose worker dies more than --max-stalls times is a WORKER_FAILED record', async () => {
    const q = queue('stalls');
    const [victim] = await Promise.all([
      worker('stalls', ['--max-stalls', '0']),
      worker('stalls', ['--max-stalls', '0']),
    ]);
    const out = join(dir, 'stalls.jsonl');
    const run = startCli([
      'embed',
      videos,
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'stalls',
      '--frames',
      '4',
      '--no-cache',
    ]);
    await holding(q, victim);
    victim.child.kill('SIGKILL');
    const done = await run.done;
    expect(done.code, done.stderr).toBe(1);
    const rows = jsonl<Row>(readFileSync(out, 'utf8'));
    expect(rows.map((r) => r.path).sort()).toEqual([...local.keys()].sort());
    const failed = rows.filter((r) => r.error);
    expect(failed.map((r) => r.error!.code)).toEqual(['WORKER_FAILED']);
    expect(failed[0].error!.message).toMatch(/died .* more often than they allow \(--max-stalls\)/);
    expect(done.stderr).toMatch(/11 ok, 1 failed \(WORKER_FAILED: 1\)/);
  });

  it('SIGTERM on a worker finishes the job in hand, then exits 130', async () => {
    const q = queue('term');
    const w = await worker('term');
    const out = join(dir, 'term.jsonl');
    const run = startCli(['embed', videos, '--out', out, '--redis', redis.url, '--queue', 'term', ...COMMON]);
    await holding(q, w);
    w.child.kill('SIGTERM');
    const stopped = await w.done;
    expect(stopped.code).toBe(130);
    // The job in hand (and, if it had just moved on, the next) finished; nothing handed back.
    expect(stopped.stderr).toMatch(/stopped: [1-9]\d* done .*0 handed back/);
    await waitForLines(out, 1, 30_000); // the job in hand became a result
    await worker('term');
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expectAllOnce(out);
  });
});

describeWithRedis('URL inputs', () => {
  it("travel to the workers as they are and give the file's embeddings; a local run never caches them", async () => {
    const name = readdirSync(videos)[0];
    const server = await serveFiles({ 'v.mp4': join(videos, name) });
    try {
      // The server is on this machine: the worker must be told it may reach it.
      await worker('url', ['--allow-host', '127.0.0.1', '--allow-private-network']);
      const out = join(dir, 'url.jsonl');
      const url = server.url('v.mp4');
      const run = await runCli([
        'embed',
        url,
        server.url('gone.mp4'),
        '--out',
        out,
        '--redis',
        redis.url,
        '--queue',
        'url',
        ...COMMON,
      ]);
      expect(run.code, run.stderr).toBe(1);
      const [row, gone] = jsonl<Row>(readFileSync(out, 'utf8'));
      expect(row.path).toBe(url);
      const want = local.get(join(videos, name))!;
      expect(Math.max(...row.clips![0].embedding.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-4);
      expect(gone.error).toMatchObject({ code: 'ENOENT', message: expect.stringMatching(/404/) });
      // What is behind a URL may change: a run with the cache on decodes it again.
      const cache = join(dir, 'url-cache');
      for (let i = 0; i < 2; i++) {
        const again = await runCli([
          'embed',
          url,
          '--out',
          join(dir, 'url-local.jsonl'),
          '--force',
          '--frames',
          '4',
          '--cache',
          cache,
        ]);
        expect(again.code, again.stderr).toBe(0);
        expect(again.stderr).toMatch(/1 ok, 0 failed, 0 from cache, 1 decoded/);
      }
    } finally {
      await server.close();
    }
  });
});

describeWithRedis('a worker stopped twice', () => {
  it('hands its job in hand back to the queue at once, and another worker does it', async () => {
    const q = queue('handback');
    const w = await worker('handback');
    const out = join(dir, 'handback.jsonl');
    // A long job: every frame of a 10 s video.
    const run = startCli([
      'embed',
      fixture(COUNTER.path),
      '--out',
      out,
      '--redis',
      redis.url,
      '--queue',
      'handback',
      '--sampling',
      'fps:24',
      ...COMMON,
    ]);
    await holding(q, w);
    w.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    w.child.kill('SIGINT');
    const stopped = await w.done;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/stopped: 0 done .*1 handed back/);
    expect(await q.getWaitingCount()).toBe(1);
    await worker('handback');
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expect(jsonl<Row>(readFileSync(out, 'utf8')).map((r) => r.clips?.length)).toEqual([60]);
  });
});

describeWithRedis('train and eval with --redis', () => {
  it('embed their videos through the workers: the model trains, and its predictions equal a local eval', async () => {
    await worker('phases');
    const model = join(dir, 'model');
    const remote = ['--redis', redis.url, '--queue', 'phases'];
    const trained = await runCli([
      'train',
      'samples',
      '--out',
      model,
      '--frames',
      '4',
      '--epochs',
      '3',
      '--augment',
      '0',
      '--no-cache',
      '--quiet',
      ...remote,
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    const info = JSON.parse(readFileSync(join(model, 'framewise.json'), 'utf8'));
    expect(info.backboneId ?? info.backbone?.id).toMatch(/^mobilenet_v2-/);
    const predictions = async (extra: string[], out: string): Promise<string> => {
      const run = await runCli([
        'eval',
        'samples',
        '--model',
        model,
        '--out',
        out,
        '--no-cache',
        '--quiet',
        ...extra,
      ]);
      expect(run.code, run.stderr).toBe(0);
      return jsonl<{ path: string; label: string; score: number }>(
        readFileSync(join(out, 'predictions.jsonl'), 'utf8'),
      )
        .map((p) => `${p.path} ${p.label} ${p.score.toFixed(4)}`)
        .join('\n');
    };
    expect(await predictions(remote, join(dir, 'eval-remote'))).toBe(
      await predictions([], join(dir, 'eval-local')),
    );
  });
});

describe('a Redis that accepts connections and never answers', () => {
  it('the coordinator prints its timeout and exits 1 (nothing keeps it alive)', async () => {
    const silent = createServer((socket) => socket.on('error', () => undefined).resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const started = Date.now();
      const run = await runCli([
        'embed',
        videos,
        '--out',
        join(dir, 'silent.jsonl'),
        '--redis',
        `redis://127.0.0.1:${port}`,
        '--redis-timeout',
        '2',
        ...COMMON,
      ]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/has not answered for 2 s/);
      // 2 s of silence, then the exit; before the fix it never came.
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      silent.close();
    }
  }, 30_000);
});

describe('the queue flags', () => {
  it.each([
    [['embed', 'samples', '--out', '-', '--queue', 'q'], /`--queue` needs `--redis <url>`/],
    [['embed', 'samples', '--out', '-', '--redis-timeout', '3'], /`--redis-timeout` needs `--redis <url>`/],
    [
      ['embed', 'samples', '--out', '-', '--redis', 'http://host:6379'],
      /Expected a Redis URL \(redis:\/\/host:6379\[\/db\].*\) for `--redis`/,
    ],
    [
      ['embed', 'samples', '--out', '-', '--redis', 'redis://127.0.0.1:6379/abc'],
      /Expected a Redis URL .*the db a number.* for `--redis` but received "redis:\/\/127\.0\.0\.1:6379\/abc"/,
    ],
    [['worker', '--redis', 'redis://127.0.0.1:6379/1x'], /Expected a Redis URL .* for `--redis`/],
    [
      ['embed', 'samples', '--out', '-', '--redis', 'redis://h', '--queue', 'a:b'],
      /Expected a queue name .* for `--queue`/,
    ],
    [
      ['embed', 'samples', '--out', '-', '--redis', 'redis://h', '--redis-timeout', '0'],
      /positive number of seconds for `--redis-timeout`/,
    ],
    [['worker'], /`--redis <url>` is required/],
    [['worker', '--redis', 'redis://h', '--max-stalls', '-1'], /non-negative integer for `--max-stalls`/],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const run = await runCli(args as string[]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});
