/**
 * `startWorker()`: the loop behind `framewise worker`. It takes embedding jobs from a BullMQ
 * queue on Redis and runs each with the same local runner as a run on one machine (ffmpeg
 * decodes, the batcher, the backbone on its engine, the embedding cache of this machine).
 *
 * - The backbone is this worker's own (`backbone`, `engine`...); a job for another backbone
 *   id is refused (it fails, and its coordinator stops with the worker's message).
 * - A worker trusts no job (anyone who can write to the queue's Redis can enqueue one): it
 *   opens only paths under its `roots` (real paths, resolved when the job runs) and URLs on
 *   its `allowHosts` whose addresses are public, every FFmpeg connection going through its
 *   egress proxy (`proxy.ts`); anything else is a `FORBIDDEN` record that opens nothing. Job
 *   data over `maxJobBytes` is refused before it is parsed; malformed data gets a short reason.
 * - A video that cannot be read is a result (an error record), never a retry; a path
 *   missing here names this host, since the coordinator may see it.
 * - A worker killed mid-job leaves its job stalled: after `stallTimeoutMs`, BullMQ's stalled
 *   check (run by the other workers) hands it to another worker; one that stalled more than
 *   `maxStalls` times fails, and becomes a `WORKER_FAILED` record.
 * - `close()` stops taking jobs and lets those in hand finish; `close({ handBack: true })`
 *   stops them and hands them back to the queue at once.
 * - Redis unreachable for longer than `timeoutMs`: the worker stops, and `closed` rejects
 *   with a `QueueError`.
 */
import { hostname } from 'node:os';
import { Queue, UnrecoverableError, WaitingError, Worker, type Job, type JobJson } from 'bullmq';
import type { Redis } from 'ioredis';
import { QueueError } from '../errors.js';
import { stableStringify, EmbeddingCache, type EmbeddingStore } from '../embedding/cache.js';
import type { FrameEmbedder } from '../embedding/frame-embedder.js';
import { ingestStages, LocalRunner, type IngestStages } from '../embedding/local-runner.js';
import { INFERENCE_CONCURRENCY } from './local.js';
import type { ErrorRecord, VideoFrames } from '../embedding/runner.js';
import { openFrameEmbedder } from '../engines/index.js';
import { DecodePool, decodeWorkers, pooledDecoder } from '../ingest/decode-pool.js';
import { createDecoder, type VideoDecoder } from '../ingest/decoders.js';
import { debug } from '../log.js';
import {
  checkQueueName,
  checkRedisCa,
  checkRedisUrl,
  DEFAULT_QUEUE,
  DEFAULT_REDIS_TIMEOUT_MS,
  resolveOptions,
} from './options.js';
import type { PipelineOptions, RemoteSettings, ResolvedOptions } from '../embedding/options.js';
import {
  boolean,
  checkSignal,
  invalid,
  isPlainObject,
  LIMITS,
  nonNegativeInteger,
  positiveInteger,
} from '../validate.js';
import { checkEviction, connectionOptions, Contact, redisClient, within } from './connection.js';
import {
  checkJobData,
  DEFAULT_MAX_JOB_BYTES,
  encodeResult,
  redactUrl,
  type JobData,
  type JobResult,
} from './protocol.js';
import { Confinement, type ConfineOptions, type Refusal } from './confine.js';
import { serveMetrics, WorkerMetrics, type MetricsServer } from './metrics.js';
import { acquireProxy, releaseProxy, type EgressProxy } from './proxy.js';
import { readPresence, removePresence, writePresence, type WorkerPresence } from './presence.js';
import { isUrl } from '../ingest/open-policy.js';

/**
 * Options of `startWorker()`: the queue, and this machine's backbone and decoding (`timeoutMs`
 * is the decode timeout for jobs whose coordinator set none).
 */
export interface WorkerOptions
  extends ConfineOptions,
    Pick<RemoteSettings, 'redisCa' | 'strictRedis'>,
    Pick<
      PipelineOptions,
      | 'backbone'
      | 'normalize'
      | 'engine'
      | 'backend'
      | 'threads'
      | 'decoder'
      | 'batch'
      | 'workers'
      | 'cache'
      | 'timeoutMs'
    > {
  /** The Redis that holds the queue: `redis://host:6379[/db]`, or `rediss://` for TLS. */
  redis: string;
  /** @default 'framewise' */
  queue?: string;
  /** Jobs (videos) at once; each decodes with its own ffmpeg. @default 2 */
  jobs?: number;
  /** @deprecated The old name of `jobs` (a run's `concurrency` counts decodes, a worker's counts jobs). */
  concurrency?: number;
  /** How long a job's lock lasts without renewal: a worker silent this long is taken for dead. @default 30000 */
  stallTimeoutMs?: number;
  /** Times a job may be handed on after its worker died before it becomes a `WORKER_FAILED` record. @default 1 */
  maxStalls?: number;
  /** How long to wait for an unreachable Redis before the worker stops. @default 60000 */
  redisTimeoutMs?: number;
  /** Job data larger than this (bytes, as Redis holds it) is refused before it is parsed. @default 65536 */
  maxJobBytes?: number;
  /** Serve Prometheus metrics at `http://0.0.0.0:PORT/metrics` (0: a free port, see `WorkerHandle.metricsPort`). @default none */
  metricsPort?: number;
  /** Counts, on every change. */
  onProgress?: (stats: WorkerStats) => void;
  /** Aborts loading the backbone. */
  signal?: AbortSignal;
}

export interface WorkerStats {
  /** Jobs that gave a result, and how many of those were error records. */
  done: number;
  errors: number;
  /** Jobs refused (another backbone or protocol, malformed, too large) or failed. */
  refused: number;
  /** Of `errors`, the `FORBIDDEN` records: paths outside the roots, URLs not allowed. */
  forbidden: number;
  /** Jobs handed back to the queue unfinished. */
  handedBack: number;
  /** Jobs in hand now. */
  active: number;
  /** The last refusal or failure, for the log. */
  lastProblem?: string;
}

export interface WorkerHandle {
  /** `framewise@host:pid`, as BullMQ records it on the jobs this worker takes. */
  readonly name: string;
  readonly backboneId: string;
  /** The engine that runs the backbone (`onnx` or `tfjs`), and why. */
  readonly engine: { name: string; reason: string };
  /** The tfjs backend, and why: present only when the engine is `tfjs`. */
  readonly backend?: { name: string; reason: string };
  /** The port of `/metrics`, when `metricsPort` was given. */
  readonly metricsPort: number | undefined;
  /** Resolves when the worker has stopped (after `close()`); rejects when Redis was gone too long. */
  readonly closed: Promise<WorkerStats>;
  /** Stops taking jobs; those in hand finish, or with `handBack` are handed back at once. */
  close(options?: { handBack?: boolean }): Promise<WorkerStats>;
}

/** Loads the backbone and starts taking jobs. */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const settings = await checkWorkerOptions(options);
  const { resolved } = settings;
  await checkRedisAtStart(settings);
  const embedder: FrameEmbedder = await openFrameEmbedder({
    backbone: resolved.backbone,
    engine: resolved.engine,
    backend: resolved.backend,
    cacheDir: resolved.cache === false ? undefined : resolved.cache,
    workers: resolved.workers,
    intraOpThreads: undefined,
    onPrepare: undefined,
    signal: settings.signal,
    lazy: false,
  });
  const store = resolved.cache === false ? undefined : new EmbeddingCache(resolved.cache);
  const decoder = await createDecoder(resolved.decoder);
  // The local runner's decode workers: one per job decoding at once (each job is one video).
  const decodeThreads = decodeWorkers(decoder.name, settings.concurrency);
  const decodePool = decodeThreads > 0 ? new DecodePool({ workers: decodeThreads }) : undefined;
  const metrics =
    settings.metricsPort === undefined
      ? undefined
      : new WorkerMetrics(() => queueForMetrics, settings.queueName);
  let queueForMetrics: Queue | undefined;
  let proxy: EgressProxy | undefined;
  let server: MetricsServer | undefined;
  try {
    proxy = await acquireProxy(settings.confinement, settings.confinementKey);
    if (metrics) server = await serveMetrics(settings.metricsPort!, metrics.registry);
  } catch (error) {
    if (proxy) await releaseProxy(proxy);
    await embedder.dispose();
    await decodePool?.close();
    throw error;
  }
  const worker = new JobWorker(
    settings,
    new RunnerPool(embedder, resolved, store, decoder, decodePool, metrics),
    proxy,
    metrics,
    server,
  );
  queueForMetrics = worker.queue();
  return worker.handle();
}

/** `options`, checked, with every default filled in. */
interface WorkerSettings {
  redis: string;
  redisCa: string | undefined;
  strictRedis: boolean;
  queueName: string;
  concurrency: number;
  stallTimeoutMs: number;
  maxStalls: number;
  /** How long Redis may be silent. */
  timeoutMs: number;
  signal: AbortSignal | undefined;
  onProgress: WorkerOptions['onProgress'];
  resolved: ResolvedOptions;
  confinement: Confinement;
  /** The confinement options as given, to compare with another worker's in this process. */
  confinementKey: string;
  maxJobBytes: number;
  metricsPort: number | undefined;
  host: string;
  /** `framewise@host:pid` */
  name: string;
}

/** `jobs`, or its old name `concurrency`: jobs at once. */
function workerJobs(options: WorkerOptions): number {
  const { jobs, concurrency } = options;
  if (jobs !== undefined && concurrency !== undefined && jobs !== concurrency)
    throw new TypeError(
      `\`jobs\` (${String(jobs)}) and \`concurrency\` (${String(concurrency)}, its deprecated name) conflict: give \`jobs\` only`,
    );
  if (jobs !== undefined) return positiveInteger('jobs', jobs, LIMITS.parallel);
  return concurrency === undefined ? 2 : positiveInteger('concurrency', concurrency, LIMITS.parallel);
}

/** Checks `options` before anything loads. */
async function checkWorkerOptions(options: WorkerOptions): Promise<WorkerSettings> {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const redis = checkRedisUrl('redis', options.redis);
  const redisCa = checkRedisCa('redisCa', options.redisCa, redis);
  const strictRedis = options.strictRedis === undefined ? false : boolean('strictRedis', options.strictRedis);
  connectionOptions({ redisCa }); // reads the CA file now: an unreadable one is a usage error
  const queueName = options.queue === undefined ? DEFAULT_QUEUE : checkQueueName('queue', options.queue);
  const concurrency = workerJobs(options);
  const stallTimeoutMs =
    options.stallTimeoutMs === undefined
      ? 30_000
      : positiveInteger('stallTimeoutMs', options.stallTimeoutMs, LIMITS.timeoutMs);
  const maxStalls =
    options.maxStalls === undefined ? 1 : nonNegativeInteger('maxStalls', options.maxStalls, 1000);
  const timeoutMs =
    options.redisTimeoutMs === undefined
      ? DEFAULT_REDIS_TIMEOUT_MS
      : positiveInteger('redisTimeoutMs', options.redisTimeoutMs, LIMITS.timeoutMs);
  const metricsPort =
    options.metricsPort === undefined
      ? undefined
      : nonNegativeInteger('metricsPort', options.metricsPort, 65535);
  const maxJobBytes =
    options.maxJobBytes === undefined
      ? DEFAULT_MAX_JOB_BYTES
      : positiveInteger('maxJobBytes', options.maxJobBytes, 512 * 1024 * 1024);
  const signal = checkSignal('signal', options.signal);
  const confinement = await Confinement.create({
    roots: options.roots,
    allowHosts: options.allowHosts,
    allowPrivateNetwork: options.allowPrivateNetwork,
  });
  const confinementKey = stableStringify({
    roots: confinement.roots,
    hosts: options.allowHosts ?? [],
    private: confinement.allowPrivateNetwork,
  });
  // The backbone flags mean what they mean for a local run; the frames come with each job.
  const resolved = resolveOptions({
    backbone: options.backbone,
    normalize: options.normalize,
    engine: options.engine,
    backend: options.backend,
    threads: options.threads,
    decoder: options.decoder,
    batch: options.batch,
    workers: options.workers,
    cache: options.cache,
    timeoutMs: options.timeoutMs,
  });
  const host = hostname();
  return {
    redis,
    redisCa,
    strictRedis,
    queueName,
    concurrency,
    stallTimeoutMs,
    maxStalls,
    timeoutMs,
    signal,
    onProgress: options.onProgress,
    resolved,
    confinement,
    confinementKey,
    maxJobBytes,
    metricsPort,
    host,
    name: `framewise@${host}:${process.pid}`,
  };
}

/** How often a worker rewrites its presence (status, coordinators); a minute without makes it stale. */
const PRESENCE_EVERY_MS = 2000;

/** The eviction policy, before the backbone loads; a Redis that does not answer soon is left to the worker's watch. */
async function checkRedisAtStart(settings: WorkerSettings): Promise<void> {
  const client = redisClient(settings.redis, (error) => debug('worker: redis: %s', error.message), {
    redisCa: settings.redisCa,
  });
  try {
    await within(
      checkEviction(client, redactUrl(settings.redis), settings.strictRedis),
      Math.min(settings.timeoutMs, 5000),
      undefined,
    );
  } finally {
    client.disconnect();
  }
}

/** One local runner per distinct job settings, all over the one backbone and the one decode pool. */
class RunnerPool {
  private readonly runners = new Map<string, LocalRunner>();
  /** What the runners decode with: the decode workers when there are some (the pool closes them, never a runner). */
  private readonly videoDecoder: VideoDecoder | undefined;
  constructor(
    readonly embedder: FrameEmbedder,
    private readonly resolved: ResolvedOptions,
    private readonly store: EmbeddingStore | undefined,
    private readonly decoder: VideoDecoder,
    private readonly decodePool: DecodePool | undefined,
    private readonly metrics: WorkerMetrics | undefined,
  ) {
    this.videoDecoder = decodePool ? { ...pooledDecoder(decoder, decodePool), close: undefined } : undefined;
  }

  /** Disposes the backbone and closes the decode workers (the runners own nothing else). */
  async close(): Promise<void> {
    await this.embedder.dispose();
    await this.decodePool?.close();
  }

  get decoderName(): string {
    return this.decoder.name;
  }

  for(settings: JobData['settings']): LocalRunner {
    const key = stableStringify(settings);
    let runner = this.runners.get(key);
    if (!runner) {
      const { resolved, decoder, metrics } = this;
      runner = new LocalRunner(
        metrics ? timedEmbedder(this.embedder, metrics) : this.embedder,
        metrics ? timedStages(metrics) : ingestStages,
        {
          sampling: settings.sampling,
          size: settings.size,
          fit: settings.fit,
          seek: settings.seek,
          concurrency: 1,
          batch: resolved.batch,
          inferenceConcurrency: INFERENCE_CONCURRENCY,
          timeoutMs: settings.timeoutMs ?? resolved.timeoutMs,
          threads: resolved.threads,
          decoder: this.videoDecoder ?? decoder,
          store: this.store,
        },
        false /* ownsEmbedder */,
      );
      this.runners.set(key, runner);
    }
    return runner;
  }
}

/** The ingest stages, with each decode timed. */
function timedStages(metrics: WorkerMetrics): IngestStages {
  return {
    ...ingestStages,
    async open(decoder, path, options) {
      const video = await ingestStages.open(decoder, path, options);
      return {
        path: video.path,
        metadata: video.metadata,
        close: () => video.close(),
        async decode(plans, o) {
          const stop = metrics.decodeSeconds.startTimer();
          try {
            return await video.decode(plans, o);
          } finally {
            stop();
          }
        },
      };
    },
  };
}

/** The embedder, with each backbone call timed (it owns nothing: the pool disposes the real one). */
function timedEmbedder(embedder: FrameEmbedder, metrics: WorkerMetrics): FrameEmbedder {
  return {
    get backboneId() {
      return embedder.backboneId;
    },
    get inputSize() {
      return embedder.inputSize;
    },
    get dim() {
      return embedder.dim;
    },
    get engine() {
      return embedder.engine;
    },
    get backend() {
      return embedder.backend;
    },
    get backbone() {
      return embedder.backbone;
    },
    async embedClips(data, shape, options) {
      const stop = metrics.backboneSeconds.startTimer();
      try {
        return await embedder.embedClips(data, shape, options);
      } finally {
        stop();
      }
    },
    ...(embedder.prepare ? { prepare: () => embedder.prepare!() } : {}),
    dispose: async () => undefined,
  };
}

/** A started worker: the BullMQ worker, its jobs in hand and counts, and its watch on Redis. */
class JobWorker {
  private readonly stats: WorkerStats = {
    done: 0,
    errors: 0,
    forbidden: 0,
    refused: 0,
    handedBack: 0,
    active: 0,
  };
  private readonly inHand = new Set<AbortController>();
  private readonly worker: GuardedWorker;
  /** Its own connection, for the ping: the worker's are busy blocking for jobs. */
  private readonly client: Redis;
  private readonly contact: Contact;
  private lastPing = 0;
  private lastPresence = 0;
  private presenceWrites = 0;
  private countsQueue: Queue | undefined;
  private readonly startedAt = Date.now();
  /** (time, videos done) every presence write, over the last minute: the recent rate. */
  private readonly samples: Array<[number, number]> = [];
  private readonly watch: NodeJS.Timeout;
  private failure: QueueError | undefined;
  private stopping: Promise<WorkerStats> | undefined;
  private readonly closed: Promise<WorkerStats>;
  private settleClosed!: { resolve: (stats: WorkerStats) => void; reject: (error: unknown) => void };
  private readonly running: Promise<void>;

  constructor(
    private readonly settings: WorkerSettings,
    private readonly runners: RunnerPool,
    private readonly proxy: EgressProxy,
    private readonly metrics: WorkerMetrics | undefined,
    private readonly metricsServer: MetricsServer | undefined,
  ) {
    const { redis, queueName, concurrency, stallTimeoutMs, maxStalls, name, timeoutMs } = settings;
    this.worker = new GuardedWorker(
      settings.maxJobBytes,
      queueName,
      (job, token) => this.process(job, token),
      {
        connection: { url: redis, ...connectionOptions({ redisCa: settings.redisCa }) },
        name,
        concurrency,
        lockDuration: stallTimeoutMs,
        stalledInterval: stallTimeoutMs,
        maxStalledCount: maxStalls,
        autorun: false,
      },
    );
    this.worker.on('error', (error) => debug('worker: redis: %s', error.message));
    this.closed = new Promise<WorkerStats>((resolve, reject) => (this.settleClosed = { resolve, reject }));
    this.closed.catch(() => undefined);
    this.client = redisClient(redis, (error) => debug('worker: redis ping: %s', error.message), {
      redisCa: settings.redisCa,
    });
    this.contact = new Contact(timeoutMs, () => this.unreachableError());
    this.watch = setInterval(() => this.watchRedis(), 1000);
    // Said at once: a coordinator waiting on this worker's first job, were it killed, needs its --stall-timeout.
    this.lastPresence = Date.now();
    this.present().catch((error: Error) => debug('worker: presence: %s', error.message));
    this.running = this.worker.run().catch((error: Error) => {
      this.failure ??= new QueueError(`${name} stopped: ${error.message}`, { cause: error });
      void this.close();
    });
    debug('worker: %s takes jobs from %s at %s', name, queueName, redactUrl(redis));
  }

  /** What `startWorker()` gives. */
  handle(): WorkerHandle {
    const { embedder } = this.runners;
    const metricsPort = this.metricsServer?.port;
    return {
      name: this.settings.name,
      backboneId: embedder.backboneId,
      engine: embedder.engine,
      ...(embedder.backend ? { backend: embedder.backend } : {}),
      metricsPort,
      closed: this.closed,
      close: (options) => this.close(options),
    };
  }

  /** A queue over the ping connection, for the job counts of the metrics (made at the first scrape). */
  queue(): Queue {
    this.countsQueue ??= new Queue(this.settings.queueName, { connection: this.client });
    this.countsQueue.on('error', () => undefined);
    return this.countsQueue;
  }

  /** Stops taking jobs; those in hand finish, or with `handBack` are handed back at once. */
  close(options: { handBack?: boolean } = {}): Promise<WorkerStats> {
    if (options.handBack)
      for (const controller of this.inHand)
        controller.abort(new DOMException('The worker is stopping', 'AbortError'));
    this.stopping ??= this.stop();
    this.stopping.then(this.settleClosed.resolve, this.settleClosed.reject);
    return this.stopping;
  }

  private async stop(): Promise<WorkerStats> {
    const stopped = (async () => {
      await this.worker.close(this.failure !== undefined);
      await this.running;
    })();
    // Without Redis nothing can be handed back; the locks expire and the stalled check does it.
    await (this.failure ? within(stopped, 2000, undefined) : stopped);
    clearInterval(this.watch);
    await this.metricsServer?.close();
    if (this.countsQueue)
      await within(
        this.countsQueue.close().catch(() => undefined),
        1000,
        undefined,
      );
    if (!this.failure)
      await within(
        removePresence(this.client, this.settings.queueName, 'workers', this.settings.name).catch(
          () => undefined,
        ),
        1000,
        undefined,
      );
    this.client.disconnect();
    await this.runners.close();
    await releaseProxy(this.proxy);
    if (this.failure) throw this.failure;
    return { ...this.stats };
  }

  /** Redis is watched with a ping: silent past the timeout, the worker stops with an error. */
  private watchRedis(): void {
    if (Date.now() - this.lastPing >= Math.min(2000, this.settings.timeoutMs / 3)) {
      this.lastPing = Date.now();
      this.client.ping().then(
        () => this.contact.heard(),
        () => undefined,
      );
    }
    if (Date.now() - this.lastPresence >= PRESENCE_EVERY_MS) {
      this.lastPresence = Date.now();
      this.present().catch((error: Error) => debug('worker: presence: %s', error.message));
    }
    if (this.contact.lost() && !this.failure) {
      this.failure = this.unreachableError();
      void this.close({ handBack: true });
    }
  }

  /** This worker in the queue's workers, for `framewise status`, metrics and coordinators waiting on a job. */
  private async present(): Promise<void> {
    const { settings, stats, runners } = this;
    const now = Date.now();
    this.samples.push([now, stats.done]);
    while (this.samples.length > 1 && now - this.samples[0][0] > 60_000) this.samples.shift();
    const [since, doneThen] = this.samples[0];
    const value: WorkerPresence = {
      ...{
        name: settings.name,
        host: settings.host,
        pid: process.pid,
        backbone: runners.embedder.backboneId,
        engine: runners.embedder.engine.name,
        decoder: runners.decoderName,
      },
      ...{
        concurrency: settings.concurrency,
        stallTimeoutMs: settings.stallTimeoutMs,
        startedAt: this.startedAt,
        updatedAt: now,
      },
      ...{
        done: stats.done,
        errors: stats.errors,
        active: stats.active,
        recentPerSecond: now > since ? ((stats.done - doneThen) * 1000) / (now - since) : 0,
      },
    };
    await writePresence(this.client, settings.queueName, 'workers', value);
    // Fields of workers killed long ago go, now and then (the readers only read).
    if (this.presenceWrites++ % 15 === 0)
      await readPresence(this.client, settings.queueName, 'workers', true /* prune */);
  }

  private unreachableError(): QueueError {
    const { redis, timeoutMs, name } = this.settings;
    return new QueueError(
      `Redis at ${redactUrl(redis)} has not answered for ${Math.round(timeoutMs / 1000)} s (the limit: --redis-timeout); ${name} stops, and its jobs in hand go back to the queue when their locks expire`,
    );
  }

  /** The processor of one job: its result, a refusal, or (when stopping) the job handed back. */
  private async process(job: Job<unknown, JobResult>, token?: string): Promise<JobResult> {
    const data = this.checked(job);
    const runner = this.runnerFor(job.id, data);
    const controller = new AbortController();
    this.inHand.add(controller);
    this.stats.active += 1;
    this.report();
    const stopTimer = this.metrics?.jobSeconds.startTimer();
    try {
      const result = await this.embed(runner, data.item, controller.signal);
      stopTimer?.();
      this.count(result);
      return result;
    } catch (error) {
      if (controller.signal.aborted && token) {
        // Stopping: the job goes back to the queue for another worker, not to failed.
        await job.moveToWait(token);
        this.stats.handedBack += 1;
        throw new WaitingError();
      }
      this.stats.refused += 1;
      this.metrics?.refused.inc();
      this.stats.lastProblem = `${this.settings.name}: ${(error as Error).message}`;
      throw new Error(this.stats.lastProblem);
    } finally {
      this.inHand.delete(controller);
      this.stats.active -= 1;
      this.report();
    }
  }

  /** The job's data, checked; too large, unparsable or malformed, a refusal with a short reason (never the data). */
  private checked(job: Job<unknown, JobResult>): JobData {
    const { name } = this.settings;
    const unread = this.worker.unreadable.get(job);
    if (unread) this.refuse(`${name} refused job ${job.id}: ${unread}`);
    const data = checkJobData(job.data);
    if (typeof data === 'string') {
      const protocol = /^it is job protocol/.test(data)
        ? ': run the same framewise version on every machine'
        : '';
      this.refuse(`${name} refused job ${job.id}: ${data}${protocol}`);
    }
    return data;
  }

  /** The local runner for a job, or a refusal: another backbone or frame size. */
  private runnerFor(id: string | undefined, data: JobData): LocalRunner {
    const { name } = this.settings;
    const { embedder } = this.runners;
    if (data.backboneId !== embedder.backboneId) {
      this.refuse(
        `${name} runs backbone ${embedder.backboneId} but job ${id} (${data.item.path}) needs ${data.backboneId}: start the workers with the coordinator's --backbone`,
      );
    }
    if (data.settings.size !== embedder.inputSize)
      this.refuse(
        `${name}: job ${id} asks for ${data.settings.size}px frames but backbone ${embedder.backboneId} takes ${embedder.inputSize}px`,
      );
    return this.runners.for(data.settings);
  }

  /** What the item may open: its real path, or its URL once its host and addresses are checked; or a refusal. */
  private async allowed(path: string): Promise<string | Refusal> {
    const { confinement } = this.settings;
    if (path.startsWith('/')) return confinement.checkPath(path);
    const refusal = confinement.checkUrl(path);
    if (refusal) return refusal;
    // The proxy checks again on every connection FFmpeg makes; this gives the record its reason.
    const addresses = await confinement.checkAddresses(new URL(path).hostname);
    return Array.isArray(addresses) && isUrl(path) ? path : (addresses as Refusal);
  }

  /** Runs one item; a video that cannot be read is a result (an error record), never a retry. */
  private async embed(runner: LocalRunner, item: JobData['item'], signal: AbortSignal): Promise<JobResult> {
    const open = await this.allowed(item.path);
    if (typeof open !== 'string') {
      this.stats.errors += 1;
      this.stats.forbidden += 1;
      this.stats.done += 1;
      this.stats.lastProblem = `${this.settings.name}: FORBIDDEN ${item.path.slice(0, 300)}: ${open.forbidden}`;
      return encodeResult(this.settings.host, {
        path: item.path,
        error: { code: 'FORBIDDEN', message: `${open.forbidden} (on worker host ${this.settings.host})` },
      });
    }
    let outcome: VideoFrames | ErrorRecord | undefined;
    // The real path is opened (a symlink swapped after the check cannot lead out); the record keeps the job's path.
    for await (const [, result] of runner.run([{ ...item, path: open }], { signal }))
      outcome = { ...result, path: item.path };
    if (!outcome) throw new Error(`the local runner gave nothing for ${item.path}`);
    if ('error' in outcome) {
      this.stats.errors += 1;
      // What this machine cannot reach, another may: say whose view it is.
      if (['ENOENT', 'EACCES'].includes(outcome.error.code))
        outcome = {
          ...outcome,
          error: {
            ...outcome.error,
            message: `${outcome.error.message} (on worker host ${this.settings.host})`,
          },
        };
    }
    this.stats.done += 1;
    return encodeResult(this.settings.host, outcome);
  }

  /** A result in the metrics. */
  private count(result: JobResult): void {
    const { metrics } = this;
    if (!metrics) return;
    if ('error' in result) metrics.videos.inc({ result: 'error', code: result.error.code });
    else {
      metrics.videos.inc({ result: 'ok', code: '' });
      metrics.clips.inc(result.video.clips.length);
      metrics.frames.inc(result.video.clips.length * result.video.frames);
    }
  }

  private refuse(message: string): never {
    this.stats.refused += 1;
    this.metrics?.refused.inc();
    this.stats.lastProblem = message;
    this.report();
    throw new UnrecoverableError(message);
  }

  private report(): void {
    this.metrics?.jobsInHand.set(this.stats.active);
    this.settings.onProgress?.({ ...this.stats });
  }
}

/**
 * BullMQ's worker, but job data over `maxJobBytes` is never parsed: BullMQ hands the raw
 * string from Redis to `createJob()`, which parses it; here the string's length is checked
 * first (a UTF-8 byte count at least as large), and a job too large, or not JSON, gets
 * `null` data and its reason in `unreadable`. The raw string itself has been read from Redis
 * by then (it comes in the same reply as the job's lock).
 */
class GuardedWorker extends Worker<unknown, JobResult> {
  /** Jobs whose data was not parsed, and why. */
  readonly unreadable = new WeakMap<Job, string>();
  private maxJobBytes = DEFAULT_MAX_JOB_BYTES;

  constructor(maxJobBytes: number, ...args: ConstructorParameters<typeof Worker<unknown, JobResult>>) {
    super(...args);
    this.maxJobBytes = maxJobBytes;
  }

  protected override createJob(raw: JobJson, jobId: string): Job<unknown, JobResult> {
    const text = typeof raw.data === 'string' ? raw.data : '';
    const size = text.length > this.maxJobBytes ? text.length : Buffer.byteLength(text, 'utf8');
    let reason: string | undefined;
    if (size > this.maxJobBytes)
      reason = `its data is ${size} bytes or more, over this worker's limit of ${this.maxJobBytes} (maxJobBytes, --max-job-bytes); it was not parsed`;
    else {
      try {
        return super.createJob(raw, jobId);
      } catch {
        reason = 'its data is not JSON';
      }
    }
    const job = super.createJob({ ...raw, data: 'null' }, jobId);
    this.unreadable.set(job, reason);
    return job;
  }
}
