/**
 * Prometheus metrics of a worker and of a coordinator (`--metrics-port`), through prom-client:
 * `/metrics` in the Prometheus text format, on a port of their own. Both give the videos done
 * by result and error code, the clips and frames, the queue's job counts by state (the name
 * and labels of BullMQ's own `exportPrometheusMetrics()`: `bullmq_job_count{queue,state}`,
 * read from Redis at each scrape) and the process metrics (`process_*`, `nodejs_*`). A worker
 * adds histograms of decode, backbone and job seconds and its jobs in hand; a coordinator the
 * seconds left before a stalled job it waits on is handed on. The names are in
 * docs/scale-out.md (Metrics).
 */
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { dropClient, redisClient, within } from './connection.js';
import { checkQueueName, checkRedisCa, checkRedisUrl, DEFAULT_QUEUE } from './options.js';
import type { RemoteSettings } from '../embedding/options.js';
import { UsageError } from '../errors.js';
import type { ProgressEvent } from '../embedding/progress.js';
import { debug } from '../log.js';
import { JOB_STATES } from './status.js';

/** Seconds buckets: a decode or a backbone call takes 10 ms to minutes. */
const BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The metrics both sides give. */
class CommonMetrics {
  readonly registry = new Registry();
  readonly videos: Counter<'result' | 'code'>;
  readonly clips: Counter;
  readonly frames: Counter;

  constructor(queue: () => Queue | undefined, queueName: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.videos = new Counter({
      name: 'framewise_videos_total',
      help: 'Videos done, by result (ok, error) and error code',
      labelNames: ['result', 'code'],
      registers,
    });
    this.clips = new Counter({ name: 'framewise_clips_total', help: 'Clips embedded', registers });
    this.frames = new Counter({ name: 'framewise_frames_total', help: 'Frames embedded', registers });
    new Gauge({
      name: 'bullmq_job_count',
      help: 'Number of jobs in the queue by state',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        const q = queue();
        if (!q) return;
        try {
          const counts = await q.getJobCounts(...JOB_STATES);
          for (const state of JOB_STATES) this.set({ queue: queueName, state }, counts[state] ?? 0);
        } catch (error) {
          debug('metrics: job counts: %s', (error as Error).message);
        }
      },
    });
  }
}

/** A worker's metrics; it calls the `observe` methods as jobs go. */
export class WorkerMetrics extends CommonMetrics {
  readonly decodeSeconds = new Histogram({
    name: 'framewise_decode_seconds',
    help: 'Seconds to probe and decode one video (or span)',
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly backboneSeconds = new Histogram({
    name: 'framewise_backbone_seconds',
    help: 'Seconds of one backbone call (a batch of clips)',
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly jobSeconds = new Histogram({
    name: 'framewise_job_seconds',
    help: 'Seconds of one job, taken to result',
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly jobsInHand = new Gauge({
    name: 'framewise_jobs_in_hand',
    help: 'Jobs this worker is running now',
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: 'framewise_jobs_refused_total',
    help: 'Jobs refused (another backbone or protocol, malformed, too large) or failed',
    registers: [this.registry],
  });
}

/** A coordinator's metrics, from its progress events. */
export class CoordinatorMetrics extends CommonMetrics {
  private readonly stalledSeconds = new Gauge({
    name: 'framewise_stalled_wait_seconds',
    help: 'While the output waits on a job whose worker stopped answering: at most this many seconds before it is handed on (0 otherwise)',
    registers: [this.registry],
  });
  private seen = { ok: 0, byCode: {} as Record<string, number>, clips: 0, frames: 0 };

  /** Counts what an event adds to the last one. */
  observe(event: ProgressEvent): void {
    const ok = event.videosDone - event.failures;
    if (ok > this.seen.ok) this.videos.inc({ result: 'ok', code: '' }, ok - this.seen.ok);
    for (const [code, n] of Object.entries(event.failuresByCode)) {
      const before = this.seen.byCode[code] ?? 0;
      if (n > before) this.videos.inc({ result: 'error', code }, n - before);
    }
    if (event.clipsDone > this.seen.clips) this.clips.inc(event.clipsDone - this.seen.clips);
    if (event.framesDone > this.seen.frames) this.frames.inc(event.framesDone - this.seen.frames);
    this.seen = {
      ok: Math.max(ok, this.seen.ok),
      byCode: { ...event.failuresByCode },
      clips: Math.max(event.clipsDone, this.seen.clips),
      frames: Math.max(event.framesDone, this.seen.frames),
    };
    this.stalledSeconds.set((event.queue?.waitingOn?.handedOnInMs ?? 0) / 1000);
  }
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `registry` at `/metrics` on `port` (all interfaces; 0 picks a free port). */
export async function serveMetrics(port: number, registry: Registry): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('framewise serves /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new UsageError(
          `Cannot serve metrics on port ${port}: ${error.code ?? error.message} (--metrics-port)`,
        ),
      ),
    );
    server.listen(port, () => resolve());
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A coordinator's `/metrics`: what `observe()` is told, and the queue's counts read at each scrape. */
export interface CoordinatorMetricsServer {
  readonly port: number;
  observe(event: ProgressEvent): void;
  close(): Promise<void>;
}

/** Serves a coordinator's metrics on `port` for the queue of `remote`. */
export async function startCoordinatorMetrics(
  port: number,
  remote: RemoteSettings,
): Promise<CoordinatorMetricsServer> {
  const redis = checkRedisUrl('remote.redis', remote.redis);
  const name = remote.queue === undefined ? DEFAULT_QUEUE : checkQueueName('remote.queue', remote.queue);
  let client: Redis | undefined;
  let queue: Queue | undefined;
  const metrics = new CoordinatorMetrics(() => {
    if (!queue) {
      client = redisClient(redis, (error) => debug('metrics: redis: %s', error.message), {
        redisCa: checkRedisCa('remote.redisCa', remote.redisCa, redis),
      });
      queue = new Queue(name, { connection: client });
      queue.on('error', () => undefined);
    }
    return queue;
  }, name);
  const server = await serveMetrics(port, metrics.registry);
  return {
    port: server.port,
    observe: (event) => metrics.observe(event),
    async close() {
      await server.close();
      if (queue)
        await within(
          queue.close().catch(() => undefined),
          1000,
          undefined,
        );
      if (client) dropClient(client);
    },
  };
}
