/**
 * `startWorker()`: the loop behind `framewise worker`. It takes embedding jobs from a BullMQ
 * queue on Redis and runs each with the same local runner as a run on one machine (ffmpeg
 * decodes, the batcher, the backbone on its engine, the embedding cache of this machine).
 *
 * - The backbone is this worker's own (`backbone`, `engine`...); a job for another backbone
 *   id is refused (it fails, and its coordinator stops with the worker's message).
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
import { createDecoder } from '../ingest/decoders.js';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { QueueError } from '../errors.js';
import { stableStringify, EmbeddingCache } from '../embedding/cache.js';
import type { FrameEmbedder } from '../embedding/frame-embedder.js';
import { ingestStages, LocalRunner } from '../embedding/local-runner.js';
import { INFERENCE_CONCURRENCY } from './local.js';
import type { ErrorRecord, VideoFrames } from '../embedding/runner.js';
import { createFrameEmbedder } from '../engines/index.js';
import { debug } from '../log.js';
import { checkQueueName, checkRedisUrl, DEFAULT_QUEUE, DEFAULT_REDIS_TIMEOUT_MS, resolveOptions, type PipelineOptions } from './options.js';
import { checkSignal, invalid, isPlainObject, LIMITS, nonNegativeInteger, positiveInteger } from '../validate.js';
import { REDIS_OPTIONS, redisClient, within } from './connection.js';
import { encodeResult, PROTOCOL_VERSION, redactUrl, type JobData, type JobResult } from './protocol.js';

/**
 * Options of `startWorker()`: the queue, and this machine's backbone and decoding (`timeoutMs`
 * is the decode timeout for jobs whose coordinator set none).
 */
export interface WorkerOptions extends Pick<PipelineOptions, 'backbone' | 'normalize' | 'engine' | 'backend' | 'threads' | 'decoder' | 'batch' | 'workers' | 'cache' | 'timeoutMs'> {
  /** The Redis that holds the queue: `redis://host:6379[/db]`. */
  redis: string;
  /** @default 'framewise' */
  queue?: string;
  /** Jobs (videos) at once; each decodes with its own ffmpeg. @default 2 */
  concurrency?: number;
  /** How long a job's lock lasts without renewal: a worker silent this long is taken for dead. @default 30000 */
  stallTimeoutMs?: number;
  /** Times a job may be handed on after its worker died before it becomes a `WORKER_FAILED` record. @default 1 */
  maxStalls?: number;
  /** How long to wait for an unreachable Redis before the worker stops. @default 60000 */
  redisTimeoutMs?: number;
  /** Counts, on every change. */
  onProgress?: (stats: WorkerStats) => void;
  /** Aborts loading the backbone. */
  signal?: AbortSignal;
}

export interface WorkerStats {
  /** Jobs that gave a result, and how many of those were error records. */
  done: number;
  errors: number;
  /** Jobs refused (another backbone or protocol) or failed. */
  refused: number;
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
  readonly backend: { name: string; reason: string };
  /** Resolves when the worker has stopped (after `close()`); rejects when Redis was gone too long. */
  readonly closed: Promise<WorkerStats>;
  /** Stops taking jobs; those in hand finish, or with `handBack` are handed back at once. */
  close(options?: { handBack?: boolean }): Promise<WorkerStats>;
}

/** Loads the backbone and starts taking jobs. */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const redis = checkRedisUrl('redis', options.redis);
  const queueName = options.queue === undefined ? DEFAULT_QUEUE : checkQueueName('queue', options.queue);
  const concurrency = options.concurrency === undefined ? 2 : positiveInteger('concurrency', options.concurrency, LIMITS.parallel);
  const stallTimeoutMs = options.stallTimeoutMs === undefined ? 30_000 : positiveInteger('stallTimeoutMs', options.stallTimeoutMs, LIMITS.timeoutMs);
  const maxStalls = options.maxStalls === undefined ? 1 : nonNegativeInteger('maxStalls', options.maxStalls, 1000);
  const timeoutMs = options.redisTimeoutMs === undefined ? DEFAULT_REDIS_TIMEOUT_MS : positiveInteger('redisTimeoutMs', options.redisTimeoutMs, LIMITS.timeoutMs);
  const signal = checkSignal('signal', options.signal);
  const { onProgress } = options;
  // The backbone flags mean what they mean for a local run; the frames come with each job.
  const resolved = resolveOptions({ backbone: options.backbone, normalize: options.normalize, engine: options.engine, backend: options.backend, threads: options.threads, decoder: options.decoder, batch: options.batch, workers: options.workers, cache: options.cache, timeoutMs: options.timeoutMs });
  const host = hostname();
  const name = `framewise@${host}:${process.pid}`;

  const embedder: FrameEmbedder = await createFrameEmbedder({
    backbone: resolved.backbone,
    engine: resolved.engine,
    backend: resolved.backend,
    cacheDir: resolved.cache === false ? undefined : resolved.cache,
    workers: resolved.workers,
    signal,
  });
  const store = resolved.cache === false ? undefined : new EmbeddingCache(resolved.cache);
  const decoder = await createDecoder(resolved.decoder);
  // One local runner per distinct job settings, all over the one backbone.
  const runners = new Map<string, LocalRunner>();
  const runnerFor = (settings: JobData['settings']): LocalRunner => {
    const key = stableStringify(settings);
    let runner = runners.get(key);
    if (!runner) {
      runner = new LocalRunner(
        embedder,
        ingestStages,
        { sampling: settings.sampling, size: settings.size, fit: settings.fit, concurrency: 1, batch: resolved.batch, inferenceConcurrency: INFERENCE_CONCURRENCY, timeoutMs: settings.timeoutMs ?? resolved.timeoutMs, threads: resolved.threads, decoder: decoder.name, resolvedDecoder: { name: decoder.name, reason: decoder.reason }, store },
        false,
      );
      runners.set(key, runner);
    }
    return runner;
  };

  const stats: WorkerStats = { done: 0, errors: 0, refused: 0, handedBack: 0, active: 0 };
  const report = (): void => onProgress?.({ ...stats });
  const inHand = new Set<AbortController>();

  const refuse = (message: string): never => {
    stats.refused += 1;
    stats.lastProblem = message;
    report();
    throw new UnrecoverableError(message);
  };

  const processor = async (job: Job<JobData, JobResult>, token?: string): Promise<JobResult> => {
    const data = job.data;
    if (data?.v !== PROTOCOL_VERSION) refuse(`${name} speaks job protocol ${PROTOCOL_VERSION} but job ${job.id} is ${String(data?.v)}: run the same framewise version on every machine`);
    if (data.backboneId !== embedder.backboneId) {
      refuse(`${name} runs backbone ${embedder.backboneId} but job ${job.id} (${data.item.path}) needs ${data.backboneId}: start the workers with the coordinator's --backbone`);
    }
    if (data.settings.size !== embedder.inputSize) refuse(`${name}: job ${job.id} asks for ${data.settings.size}px frames but backbone ${embedder.backboneId} takes ${embedder.inputSize}px`);
    const controller = new AbortController();
    inHand.add(controller);
    stats.active += 1;
    report();
    try {
      let outcome: VideoFrames | ErrorRecord | undefined;
      for await (const [, result] of runnerFor(data.settings).run([data.item], { signal: controller.signal })) outcome = result;
      if (!outcome) throw new Error(`the local runner gave nothing for ${data.item.path}`);
      if ('error' in outcome) {
        stats.errors += 1;
        // What this machine cannot reach, another may: say whose view it is.
        if (['ENOENT', 'EACCES'].includes(outcome.error.code)) outcome = { ...outcome, error: { ...outcome.error, message: `${outcome.error.message} (on worker host ${host})` } };
      }
      stats.done += 1;
      return encodeResult(host, outcome);
    } catch (error) {
      if (controller.signal.aborted && token) {
        // Stopping: the job goes back to the queue for another worker, not to failed.
        await job.moveToWait(token);
        stats.handedBack += 1;
        throw new WaitingError();
      }
      stats.refused += 1;
      stats.lastProblem = `${name}: ${(error as Error).message}`;
      throw new Error(stats.lastProblem);
    } finally {
      inHand.delete(controller);
      stats.active -= 1;
      report();
    }
  };

  const worker = new Worker<JobData, JobResult>(queueName, processor, {
    connection: { url: redis, ...REDIS_OPTIONS },
    name,
    concurrency,
    lockDuration: stallTimeoutMs,
    stalledInterval: stallTimeoutMs,
    maxStalledCount: maxStalls,
    autorun: false,
  });
  worker.on('error', (error) => debug('worker: redis: %s', error.message));

  // Redis is watched with a ping: silent past the timeout, the worker stops with an error.
  let lastContact = Date.now();
  let lastPing = 0;
  let failure: QueueError | undefined;
  let stopping: Promise<WorkerStats> | undefined;
  let settle!: { resolve: (stats: WorkerStats) => void; reject: (error: unknown) => void };
  const closed = new Promise<WorkerStats>((resolve, reject) => (settle = { resolve, reject }));
  closed.catch(() => undefined);
  // Its own connection: the worker's are busy blocking for jobs.
  const client = redisClient(redis, (error) => debug('worker: redis ping: %s', error.message));
  const watch = setInterval(() => {
    if (Date.now() - lastPing >= Math.min(2000, timeoutMs / 3)) {
      lastPing = Date.now();
      client.ping().then(() => (lastContact = Date.now()), () => undefined);
    }
    if (Date.now() - lastContact > timeoutMs && !failure) {
      failure = new QueueError(`Redis at ${redactUrl(redis)} has not answered for ${Math.round(timeoutMs / 1000)} s (the limit: --redis-timeout); ${name} stops, and its jobs in hand go back to the queue when their locks expire`);
      void close({ handBack: true });
    }
  }, 1000);

  const close = (closeOptions: { handBack?: boolean } = {}): Promise<WorkerStats> => {
    if (closeOptions.handBack) for (const controller of inHand) controller.abort(new DOMException('The worker is stopping', 'AbortError'));
    stopping ??= (async () => {
      const stopped = (async () => {
        await worker.close(failure !== undefined);
        await running;
      })();
      // Without Redis nothing can be handed back; the locks expire and the stalled check does it.
      await (failure ? within(stopped, 2000, undefined) : stopped);
      clearInterval(watch);
      client.disconnect();
      await embedder.dispose(); // the runners over it own nothing else
      if (failure) throw failure;
      return { ...stats };
    })();
    stopping.then(settle.resolve, settle.reject);
    return stopping;
  };

  const running = worker.run().catch((error: Error) => {
    failure ??= new QueueError(`${name} stopped: ${error.message}`, { cause: error });
    void close();
  });
  debug('worker: %s takes jobs from %s at %s', name, queueName, redactUrl(redis));

  return {
    name,
    backboneId: embedder.backboneId,
    backend: embedder.backend,
    closed,
    close,
  };
}

