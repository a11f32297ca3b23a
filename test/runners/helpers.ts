/**
 * A real `redis-server` for the scale-out tests: started on a free loopback port in a temp
 * folder (no persistence, so a restart loses the data, as a crashed Redis without AOF does),
 * and `framewise worker` children. On a machine without redis-server the tests that need it
 * skip, with one line saying why and how to run them, and the argument-only tests still run;
 * `FRAMEWISE_REQUIRE_REDIS=1` (set by .ci/run) turns the missing server into a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { ROOT, startCli, type CliRun } from '../cli/helpers.js';
import { fixturesDir } from '../fixtures.js';

/** The server binary: `$FRAMEWISE_REDIS_SERVER` (a path, or another name), else redis-server on PATH. */
const REDIS_SERVER = process.env.FRAMEWISE_REDIS_SERVER || 'redis-server';

/** Why the Redis tests cannot run here (test/global-setup.ts checks once and prints it), or undefined. */
export const redisMissing: string | undefined = process.env.FRAMEWISE_REDIS_MISSING || undefined;

/** True when the tests that need a server skip (it is missing and not required). */
export const skipRedis = redisMissing !== undefined && process.env.FRAMEWISE_REQUIRE_REDIS !== '1';

/** `describe` for tests that need a real server: skipped as `skipRedis` says. */
export const describeWithRedis: typeof describe.skip = skipRedis ? describe.skip : describe;

export interface RedisServer {
  /** `redis://127.0.0.1:PORT`, or with `tls` `rediss://localhost:TLS_PORT`. */
  readonly url: string;
  readonly port: number;
  /** Stops it (SIGTERM, no save) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * True once the server on `port` answers and is process `pid`: another test run's Redis may
 * hold the port (ours then fails to bind), and its queues and workers must not mix with ours.
 */
function answersAs(port: number, pid: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => socket.write('INFO server\r\n'));
    socket.setTimeout(500, () => socket.destroy());
    let reply = '';
    socket.on('data', (data) => {
      reply += data.toString();
      const id = /process_id:(\d+)/.exec(reply);
      if (!id) return;
      socket.destroy();
      resolve(Number(id[1]) === pid);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

/** TLS files of a server: it then listens with TLS too (its plain port stays, for the readiness check). */
export interface RedisTls {
  cert: string;
  key: string;
  ca: string;
}

export async function startRedis(options: { tls?: RedisTls } = {}): Promise<RedisServer> {
  if (redisMissing) throw new Error(`FRAMEWISE_REQUIRE_REDIS is set, but ${redisMissing}`);
  const dir = mkdtempSync(join(tmpdir(), 'fw-redis-'));
  let port = await freePort();
  const tlsPort = options.tls ? await freePort() : 0;
  const tls = options.tls
    ? [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        options.tls.cert,
        '--tls-key-file',
        options.tls.key,
        '--tls-ca-cert-file',
        options.tls.ca,
        '--tls-auth-clients',
        'no',
      ]
    : [];
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const own = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        ...tls,
      ],
      { stdio: 'ignore' },
    );
    child = own;
    const until = Date.now() + 10_000;
    while (!(await answersAs(port, own.pid!))) {
      if (own.exitCode !== null)
        throw new Error(`redis-server exited (${own.exitCode}): port ${port} is taken`);
      if (Date.now() > until) throw new Error(`redis-server did not answer on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    running.kill('SIGKILL');
    await exited;
  };
  // The port was free a moment ago; another run may take it before our server binds.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (error) {
      if (attempt === 3 || !/is taken/.test((error as Error).message)) throw error;
      port = await freePort();
    }
  }
  return {
    url: options.tls ? `rediss://localhost:${tlsPort}` : `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface WorkerChild {
  child: ChildProcess;
  /** `framewise@host:pid`, as BullMQ records it on the jobs it takes. */
  name: string;
  done: Promise<CliRun>;
  /** Its stderr so far. */
  log(): string;
}

/**
 * Starts `framewise worker` and resolves once it takes jobs; without a `--root` in `args`, its
 * roots are the temp folder, the fixtures and samples/ (the tests' videos, and the links to them).
 */
export async function startWorkerCli(
  redis: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<WorkerChild> {
  const roots = args.includes('--root')
    ? []
    : ['--root', tmpdir(), '--root', fixturesDir(), '--root', join(ROOT, 'samples')];
  const run = startCli(['worker', '--redis', redis, '--no-cache', ...roots, ...args], env);
  let stderr = '';
  run.child.stderr!.on('data', (c) => (stderr += c));
  const until = Date.now() + 120_000;
  while (!/taking jobs/.test(stderr)) {
    if (run.child.exitCode !== null || Date.now() > until)
      throw new Error(`framewise worker did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child: run.child,
    name: `framewise@${hostname()}:${run.child.pid}`,
    done: run.done,
    log: () => stderr,
  };
}

/** Kills every worker left (SIGKILL) and waits for them. */
export async function killAll(workers: WorkerChild[]): Promise<void> {
  for (const w of workers)
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.done));
}

/** A tiny .onnx backbone (a global average pool of the 224x224 frame): another backbone id, loaded at once. */
export async function writePoolModel(file: string): Promise<void> {
  const { default: onnxProto } = await import('onnx-proto');
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const shape = (dims: Array<number | string>) => ({
    dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
  });
  const model = onnx.ModelProto.fromObject({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'pool',
      node: [
        { opType: 'GlobalAveragePool', input: ['input'], output: ['gap'] },
        {
          opType: 'Flatten',
          input: ['gap'],
          output: ['pooled'],
          attribute: [{ name: 'axis', type: 2, i: 1 }],
        },
      ],
      input: [{ name: 'input', type: { tensorType: { elemType: FLOAT, shape: shape(['N', 3, 224, 224]) } } }],
      output: [{ name: 'pooled', type: { tensorType: { elemType: FLOAT, shape: shape(['N', 3]) } } }],
    },
  });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
}
