/**
 * A worker trusts no job: the jobs an attacker who can write to Redis would enqueue by hand,
 * with no coordinator, against a real redis-server and real `framewise worker`s. Paths
 * outside the roots (or led out by a symlink or `..`) are `FORBIDDEN` in the same words
 * whether they exist or not; URLs to hosts not allowed, or to addresses that are not public,
 * open nothing: the test's HTTP server receives no request. A redirect is checked again.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createSecureServer } from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Confinement, isPublicAddress } from '../../src/runners/confine.js';
import { PROTOCOL_VERSION } from '../../src/runners/protocol.js';
import { assertBuilt, runCli } from '../cli/helpers.js';
import { COUNTER, fixture } from '../fixtures.js';
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

const dir = realpathSync(tempDir('fw-confine-'));
const root = join(dir, 'root');
const outside = join(dir, 'outside');
mkdirSync(root);
mkdirSync(outside);
copyFileSync(fixture(COUNTER.path), join(root, 'ok.mp4'));
copyFileSync(fixture(COUNTER.path), join(outside, 'secret.mp4'));
symlinkSync(join(outside, 'secret.mp4'), join(root, 'link.mp4'));
symlinkSync(outside, join(root, 'out-dir'));

describe('isPublicAddress()', () => {
  it.each([
    ['8.8.8.8', true],
    ['2606:4700::1111', true],
    ['::ffff:8.8.8.8', true],
    ['127.0.0.1', false],
    ['127.1.2.3', false],
    ['0.0.0.0', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['::1', false],
    ['::', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:169.254.169.254', false],
    ['::127.0.0.1', false],
    ['fe80::1', false],
    ['fc00::1', false],
    ['ff02::1', false],
    ['2002:7f00:1::', false], // 6to4 of 127.0.0.1
    ['64:ff9b::7f00:1', false], // NAT64 of 127.0.0.1
    ['not an address', false],
  ])('%s: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });
});

describe('Confinement', () => {
  it('a path outside the roots is refused in the same words whether it exists, is missing or is a folder', async () => {
    const c = await Confinement.create({ roots: [root] });
    expect(await c.checkPath(join(root, 'ok.mp4'))).toBe(join(root, 'ok.mp4'));
    expect(await c.checkPath(join(root, 'missing.mp4'))).toBe(join(root, 'missing.mp4')); // the runner gives ENOENT
    const refusals = await Promise.all(
      [
        join(outside, 'secret.mp4'),
        join(outside, 'missing.mp4'),
        outside,
        '/etc/shadow',
        '/nonexistent/folder/x.mp4',
        join(root, 'link.mp4'),
        join(root, 'out-dir', 'secret.mp4'),
        join(root, 'out-dir', 'missing.mp4'),
        `${root}/../outside/secret.mp4`,
        `${root}/../outside/missing.mp4`,
        'relative.mp4',
      ].map((p) => c.checkPath(p)),
    );
    expect(new Set(refusals.map((r) => JSON.stringify(r)))).toEqual(
      new Set([
        JSON.stringify({
          forbidden: `this worker opens only files under its roots (${root}; framewise worker --root)`,
        }),
      ]),
    );
  });

  it('URLs: http and https on allowed hosts; *.domain is its subdomains', async () => {
    const c = await Confinement.create({
      roots: ['/'],
      allowHosts: ['media.example.com', '*.cdn.example.org', '::ffff:127.0.0.1'],
    });
    expect(c.everyFile).toBe(true);
    expect(c.checkUrl('https://media.example.com/a.mp4')).toBeUndefined();
    expect(c.checkUrl('http://MEDIA.example.com./a.mp4')).toBeUndefined();
    expect(c.checkUrl('https://eu.cdn.example.org/a.mp4')).toBeUndefined();
    expect(c.checkUrl('http://[::ffff:7f00:1]/')).toBeUndefined();
    expect(c.checkUrl('https://cdn.example.org/a.mp4')).toEqual({
      forbidden: 'host cdn.example.org is not one this worker may open (framewise worker --allow-host)',
    });
    expect(c.checkUrl('https://media.example.com.evil.test/a.mp4')?.forbidden).toMatch(
      /not one this worker may open/,
    );
    expect(c.checkUrl('ftp://media.example.com/a.mp4')).toEqual({
      forbidden: 'this worker opens only http and https URLs, not ftp',
    });
    expect(c.checkUrl('concat:/etc/passwd|/etc/passwd')?.forbidden).toMatch(
      /only http and https URLs, not concat/,
    );
    expect(c.checkUrl('file:/etc/passwd')?.forbidden).toMatch(/not file/);
  });

  it('an address that is not public is refused unless private networks are allowed', async () => {
    const c = await Confinement.create({ roots: ['/'] });
    expect(await c.checkAddresses('localhost')).toEqual({
      forbidden: expect.stringMatching(
        /^host localhost resolves to (127\.0\.0\.1|::1), which is not a public address \(framewise worker --allow-private-network\)$/,
      ),
    });
    expect(await c.checkAddresses('[::1]')).toEqual({
      forbidden: expect.stringMatching(/resolves to ::1, which is not a public address/),
    });
    expect(await c.checkAddresses('169.254.169.254')).toEqual({
      forbidden: expect.stringMatching(/resolves to 169\.254\.169\.254/),
    });
    expect(await c.checkAddresses('8.8.8.8')).toEqual(['8.8.8.8']);
    const open = await Confinement.create({ roots: ['/'], allowPrivateNetwork: true });
    expect(await open.checkAddresses('127.0.0.1')).toEqual(['127.0.0.1']);
  });

  it.each<[string, object, RegExp]>([
    ['no roots', { roots: [] }, /`roots` is required \(--root DIR, repeatable\)/],
    ['a relative root', { roots: ['videos'] }, /an absolute folder path for `roots` but received "videos"/],
    [
      'a missing root',
      { roots: ['/nonexistent-root'] },
      /The root \/nonexistent-root cannot be resolved \(ENOENT\)/,
    ],
    [
      'a URL as a host',
      { roots: ['/'], allowHosts: ['https://a.example'] },
      /a host name, an address or \*\.domain for `allowHosts` but received "https:\/\/a.example"/,
    ],
    ['a host with a port', { roots: ['/'], allowHosts: ['a.example:80'] }, /for `allowHosts`/],
    ['a bare wildcard', { roots: ['/'], allowHosts: ['*'] }, /for `allowHosts`/],
  ])('rejects %s', async (_, options, message) => {
    await expect(Confinement.create(options as never)).rejects.toThrow(message);
  });
});

describe('framewise worker arguments', () => {
  it('without --root is a usage error that explains the option', async () => {
    assertBuilt();
    const run = await runCli(['worker', '--redis', 'redis://127.0.0.1:1']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/`--root <dir>` is required: a worker opens only files under its roots/);
  });
});

type Outcome = {
  state: string;
  value?: { error?: { code: string; message: string }; video?: unknown };
  reason?: string;
};

let redis: RedisServer;
let backboneId: string;
const workers: WorkerChild[] = [];
const queues: Queue[] = [];
/** Requests the servers received, by server. */
const hits = { target: 0, served: 0, redirector: 0, secure: 0 };
const servers: Server[] = [];
let target = '';
let served = '';
let redirector = '';

async function serve(
  name: 'target' | 'served' | 'redirector',
  handle: Parameters<typeof createServer>[1],
): Promise<string> {
  const server = createServer((req, res) => {
    hits[name] += 1;
    handle!(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function queue(name: string): Queue {
  const q = new Queue(name, { connection: { url: redis.url, maxRetriesPerRequest: null } });
  q.on('error', () => undefined);
  queues.push(q);
  return q;
}

function job(path: unknown): object {
  return {
    v: PROTOCOL_VERSION,
    item: { path },
    settings: { sampling: { kind: 'uniform', frames: 2 }, size: 224, fit: 'cover', seek: 'exact' },
    backboneId,
  };
}

/** Enqueues each data by hand, as an attacker would, and waits for every outcome. */
let added = 0;
async function outcomes(q: Queue, list: unknown[]): Promise<Outcome[]> {
  const jobs = await Promise.all(list.map((data) => q.add('embed', data, { jobId: `hostile-${++added}` })));
  const until = Date.now() + 60_000;
  const result: Outcome[] = [];
  for (const added of jobs) {
    for (;;) {
      const state = await q.getJobState(added.id!);
      if (state === 'completed' || state === 'failed') {
        const got = (await q.getJob(added.id!))!;
        result.push({ state, value: got.returnvalue, reason: got.failedReason });
        break;
      }
      if (Date.now() > until) throw new Error(`job ${added.id} is still ${state}`);
      await new Promise((r) => setTimeout(r, 30));
    }
  }
  return result;
}

beforeAll(async () => {
  if (skipRedis) return;
  assertBuilt();
  redis = await startRedis();
  const model = join(dir, 'pool.onnx');
  await writePoolModel(model);
  target = await serve('target', (_req, res) => res.writeHead(200).end('secret'));
  served = await serve('served', (_req, res) => res.writeHead(404).end());
  const backbone = ['--backbone', model, '--normalize', '0..1', '--jobs', '2'];
  const hosts = [
    '127.0.0.1',
    'localhost',
    '[::1]',
    '::ffff:127.0.0.1',
    '0.0.0.0',
    '169.254.169.254',
    '10.1.2.3',
  ].flatMap((h) => ['--allow-host', h]);
  workers.push(
    await startWorkerCli(redis.url, ['--queue', 'hostile', '--root', root, ...hosts, ...backbone]),
  );
  workers.push(
    await startWorkerCli(redis.url, [
      '--queue',
      'private',
      '--root',
      '/',
      '--allow-host',
      '127.0.0.1',
      '--allow-private-network',
      ...backbone,
    ]),
  );
  backboneId = /backbone (\S+) on/.exec(workers[0].log())![1];
});

afterAll(async () => {
  await killAll(workers);
  await Promise.allSettled(queues.map((q) => q.close()));
  for (const server of servers) server.close();
  await redis?.dispose();
});

describeWithRedis('framewise worker --root / --allow-host: hostile jobs', () => {
  it('opens only real paths under its roots; refuses the rest in the same words, opening nothing', async () => {
    const paths = [
      join(root, 'ok.mp4'),
      join(root, 'missing.mp4'),
      join(outside, 'secret.mp4'),
      join(outside, 'missing.mp4'),
      outside,
      '/etc/shadow',
      join(root, 'link.mp4'),
      join(root, 'out-dir', 'secret.mp4'),
      `${root}/../outside/secret.mp4`,
      'concat:/etc/passwd|/etc/passwd',
      'file:/etc/passwd',
    ];
    const got = await outcomes(queue('hostile'), paths.map(job));
    expect(got.map((o) => o.state)).toEqual(paths.map(() => 'completed'));
    expect(got[0].value!.video).toBeDefined();
    expect(got[1].value!.error).toEqual({
      code: 'ENOENT',
      message: expect.stringContaining(`(on worker host ${hostname()})`),
    });
    const forbidden = {
      code: 'FORBIDDEN',
      message: `this worker opens only files under its roots (${root}; framewise worker --root) (on worker host ${hostname()})`,
    };
    for (const o of got.slice(2, 9)) expect(o.value!.error).toEqual(forbidden);
    expect(got[9].value!.error).toEqual({
      code: 'FORBIDDEN',
      message: expect.stringMatching(/^this worker opens only http and https URLs, not concat/),
    });
    expect(got[10].value!.error!.code).toBe('FORBIDDEN');
  });

  it('URLs to hosts not allowed, or to addresses that are not public, contact nothing', async () => {
    const port = new URL(target).port;
    const urls = [
      '127.0.0.1',
      'localhost',
      '[::1]',
      '[::ffff:127.0.0.1]',
      '0.0.0.0',
      '2130706433',
      '169.254.169.254',
      '10.1.2.3',
      'evil.test',
    ].map((h) => `http://${h}:${port}/internal-admin`);
    const got = await outcomes(queue('hostile'), [...urls, `ftp://127.0.0.1:${port}/x`].map(job));
    expect(
      got.map((o) => o.value?.error?.code),
      JSON.stringify(got),
    ).toEqual([...urls, 0].map(() => 'FORBIDDEN'));
    expect(got[0].value!.error!.message).toMatch(
      /^host 127\.0\.0\.1 resolves to 127\.0\.0\.1, which is not a public address \(framewise worker --allow-private-network\)/,
    );
    expect(got[1].value!.error!.message).toMatch(
      /^host localhost resolves to (127\.0\.0\.1|::1), which is not a public address/,
    );
    expect(got[3].value!.error!.message).toMatch(/resolves to ::ffff:7f00:1, which is not a public address/);
    expect(got[5].value!.error!.message).toMatch(/^host 127\.0\.0\.1 resolves to 127\.0\.0\.1/); // 2130706433 is 127.0.0.1
    expect(got[8].value!.error!.message).toMatch(
      /^host evil\.test is not one this worker may open \(framewise worker --allow-host\)/,
    );
    expect(hits.target).toBe(0);
  });

  it('a redirect is checked again: a redirect to a host not allowed reaches nothing; https goes through the proxy too', async () => {
    redirector = await serve('redirector', (_req, res) =>
      res.writeHead(302, { location: `http://localhost:${new URL(target).port}/internal-admin` }).end(),
    );
    // An https server with a certificate made here (FFmpeg does not verify by default): its tunnel goes through the proxy.
    execFileSync(
      'openssl',
      [
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
        '/CN=127.0.0.1',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    const secure = createSecureServer(
      { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) },
      (req, res) => {
        hits.secure += 1;
        const video = readFileSync(join(root, 'ok.mp4'));
        const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
        const [start, end] = range
          ? [Number(range[1]), range[2] ? Number(range[2]) : video.length - 1]
          : [0, video.length - 1];
        res.writeHead(range ? 206 : 200, {
          'Content-Length': end - start + 1,
          'Accept-Ranges': 'bytes',
          ...(range ? { 'Content-Range': `bytes ${start}-${end}/${video.length}` } : {}),
        });
        res.end(video.subarray(start, end + 1));
      },
    );
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    servers.push(secure);
    const before = hits.target;
    const [followed, direct, tunnelled] = await outcomes(queue('private'), [
      job(`${redirector}/video.mp4`),
      job(`${served}/missing.mp4`),
      job(`https://127.0.0.1:${(secure.address() as { port: number }).port}/v.mp4`),
    ]);
    expect(tunnelled.value!.video, JSON.stringify(tunnelled.value)).toBeDefined();
    expect(hits.secure).toBeGreaterThan(0);
    expect(hits.redirector).toBeGreaterThan(0);
    expect(hits.target).toBe(before);
    expect(followed.value!.error!.message).toMatch(/403 Forbidden/);
    // The proxy forwards what is allowed: the server was reached, and its 404 came back.
    expect(hits.served).toBeGreaterThan(0);
    expect(direct.value!.error!.message).toMatch(/404/);
    expect(workers[1].log()).toMatch(
      /warning: --root \/ lets anyone who can write to the queue read every file/,
    );
  });

  it('a 10 MB job is refused unparsed; malformed jobs get a short reason', async () => {
    const q = queue('hostile');
    const big = job('x'.repeat(10 * 1024 * 1024));
    const first = added + 1;
    const got = await outcomes(q, [
      big,
      null,
      { v: PROTOCOL_VERSION, item: null },
      { ...job(5) },
      { ...job('/a.mp4'), settings: null },
      { ...job('/a.mp4'), settings: { sampling: { kind: 'uniform', frames: 2 }, size: 224, fit: 'cover' } },
      { ...job('/a.mp4'), v: 1 },
    ]);
    const name = workers[0].name;
    expect(got.map((o) => o.state)).toEqual(got.map(() => 'failed'));
    expect(got.map((o) => o.reason)).toEqual(
      [
        `its data is ${JSON.stringify(big).length} bytes or more, over this worker's limit of 65536 (maxJobBytes, --max-job-bytes); it was not parsed`,
        'its data is not an object',
        'item is not an object',
        'item.path is not a path or URL of at most 4096 characters',
        'settings is not an object',
        'settings.seek is not exact or keyframe',
        `it is job protocol 1, this worker speaks ${PROTOCOL_VERSION}: run the same framewise version on every machine`,
      ].map((reason, i) => `${name} refused job hostile-${first + i}: ${reason}`),
    );
    // Data that is not JSON, written to Redis by hand while the queue is paused.
    await q.pause();
    await q.add('embed', {}, { jobId: 'not-json' });
    const client = new Redis(redis.url);
    await client.hset(`bull:hostile:not-json`, 'data', '{"v": 2, "item": ');
    await q.resume();
    const until = Date.now() + 30_000;
    while ((await q.getJobState('not-json')) !== 'failed' && Date.now() < until)
      await new Promise((r) => setTimeout(r, 30));
    expect(await client.hget('bull:hostile:not-json', 'failedReason')).toBe(
      `${name} refused job not-json: its data is not JSON`,
    );
    client.disconnect();
    expect(workers[0].child.exitCode).toBeNull();
  });
});
