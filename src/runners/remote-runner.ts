/**
 * `RemoteRunner`: the `EmbedRunner` of a run across machines. It enqueues one BullMQ job per
 * video (or manifest span) on Redis, `framewise worker`s on any number of machines run them
 * with their own local runner, and it yields the results in input order, exactly as the
 * local runner would: the same frames, the same error records, the same progress events
 * (plus the number of workers connected).
 *
 * - A window of jobs is outstanding at a time (it grows with the workers), so Redis holds
 *   the results in flight, never the whole folder's. A result is removed from Redis once the
 *   consumer has taken it (written it) from this generator.
 * - Results arrive through QueueEvents; a slow poll of the job at the head of the window
 *   catches what an event missed, and a job that vanished (Redis restarted without its data)
 *   is enqueued again. Delivery is at least once; the coordinator writes each result once.
 * - Every wait on Redis is bounded by `timeoutMs`: past it the run ends with a `QueueError`,
 *   after what finished was written, so `--resume` carries on.
 * - On abort, the jobs still waiting are removed, what had finished is yielded, and the run
 *   rejects with the signal's reason.
 */
import { hostname } from 'node:os';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { QueueError } from '../errors.js';
import { dropClient, redisClient, within } from './connection.js';
import { fileIdentity } from '../embedding/cache.js';
import type { FrameEmbedder } from '../embedding/frame-embedder.js';
import type { BackboneSpec } from '../embedding/backbone-spec.js';
import type { RemoteSettings } from './options.js';
import { checkSize } from '../embedding/local-runner.js';
import { ProgressTracker } from '../embedding/progress.js';
import type { EmbedItem, EmbedRunner, ErrorRecord, RunOptions, VideoFrames } from '../embedding/runner.js';
import { createFrameEmbedder, type BackendRequest, type EngineRequest } from '../engines/index.js';
import type { Fit, Sampling } from '../ingest/types.js';
import { debug } from '../log.js';
import {
  decodeResult,
  JOB_NAME,
  jobData,
  jobId,
  redactUrl,
  STALLED_REASON,
  type JobData,
  type JobSettings,
} from './protocol.js';

/** Where a run across machines sends its work. */

/** How often the head of the window and the worker count are looked at. */
const POLL_MS = 2000;
/** Jobs outstanding per connected worker, and the bounds of the window. */
const WINDOW_PER_WORKER = 4;
const MIN_WINDOW = 64;
const MAX_WINDOW = 1024;
/**
 * Events kept in the queue's stream. A completed event carries the result, so this bounds
 * Redis's memory too (about 1 in 6 events is one: ~5 MiB at 16 x 1280); events are only
 * wake-ups, the poll finds what a trimmed stream lost.
 */
const EVENTS_KEPT = 300;
/** Finished jobs kept when no coordinator takes them (one killed, say): a day, or this many. */
const KEEP = { age: 24 * 3600, count: 1000 };

type Settled = { kind: 'completed'; value: unknown } | { kind: 'failed'; reason: string };

interface Entry<I> {
  item: I;
  id: string;
  data: JobData;
  settled?: Settled;
}

export class RemoteRunner implements EmbedRunner {
  private closed = false;
  private lastBackend?: string;
  constructor(
    /** Gives the backbone's id, size and D (loaded lazily: it never runs here). */
    private readonly embedder: FrameEmbedder,
    /** As `resolveOptions()` gives it: every default filled in. */
    private readonly remote: Required<RemoteSettings>,
    private readonly settings: JobSettings,
  ) {}

  get backboneId(): string {
    return this.embedder.backboneId;
  }
  get dim(): number {
    return this.embedder.dim;
  }
  get size(): number {
    return this.settings.size;
  }
  get backbone() {
    return this.embedder.backbone;
  }
  get backend(): { name: string; reason: string } {
    const where = `on the workers of queue '${this.remote.queue}' at ${redactUrl(this.remote.redis)}`;
    return this.lastBackend ? { name: this.lastBackend, reason: where } : { name: 'none', reason: `no result from a worker yet (${where})` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.embedder.dispose();
  }

  async *run<I extends EmbedItem>(entries: readonly I[], runOptions: RunOptions = {}): AsyncGenerator<[I, VideoFrames | ErrorRecord]> {
    if (this.closed) throw new Error('The runner is closed');
    const { signal, onProgress, skip } = runOptions;
    signal?.throwIfAborted();
    const tracker = new ProgressTracker(onProgress);
    const items = tracker.select(entries, skip);

    // Connections of our own: BullMQ cannot drop one that never connected, and a Redis that is
    // gone must not keep the process alive retrying.
    const url = this.remote.redis;
    const onError = (error: Error): void => debug('remote: redis: %s', error.message);
    const clients = [redisClient(url, onError), redisClient(url, onError)];
    const queue = new Queue(this.remote.queue, { connection: clients[0], streams: { events: { maxLen: EVENTS_KEPT } } });
    const events = new QueueEvents(this.remote.queue, { connection: clients[1] });
    queue.on('error', onError);
    events.on('error', onError);

    const window: Array<Entry<I>> = [];
    const byId = new Map<string, Array<Entry<I>>>();
    let wake: () => void = () => undefined;
    const settle = (id: string, settled: Settled): void => {
      const list = byId.get(id);
      if (!list) return;
      for (const entry of list) entry.settled ??= settled;
      wake();
    };
    events.on('completed', ({ jobId: id, returnvalue }) => settle(id, { kind: 'completed', value: returnvalue }));
    events.on('failed', ({ jobId: id, failedReason }) => settle(id, { kind: 'failed', reason: failedReason }));

    // Redis is "reachable" while its answers keep coming; every wait is raced against this.
    let lastContact = Date.now();
    const unreachable = (): number => Date.now() - lastContact;
    const bounded = <T>(promise: Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const timer = setInterval(() => {
          if (unreachable() > this.remote.timeoutMs) {
            clearInterval(timer);
            reject(this.unreachableError());
          }
        }, 250);
        promise.then(
          (v) => {
            clearInterval(timer);
            lastContact = Date.now();
            resolve(v);
          },
          (e) => {
            clearInterval(timer);
            reject(e);
          },
        );
      });

    // The poll: workers connected, the head's state (an event may have been missed), jobs vanished.
    let windowSize = MIN_WINDOW;
    let polling = false;
    const poll = async (): Promise<void> => {
      if (polling) return;
      polling = true;
      try {
        const workers = await queue.getWorkersCount();
        lastContact = Date.now();
        tracker.queue = { workers, unreachableMs: 0 };
        windowSize = Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, workers * WINDOW_PER_WORKER));
        const head = window.find((e) => !e.settled);
        const seen = head ? await this.look(queue, head) : 'pending';
        if (seen === 'vanished') {
          // Redis lost its data (a restart without persistence): enqueue every job again.
          for (const entry of window) if (!entry.settled && (await this.look(queue, entry)) === 'vanished') await this.enqueue(queue, entry);
        } else if (seen === 'settled') {
          // The head finished without its event (the stream was trimmed, or the listener was
          // reconnecting): look at the rest of the window too.
          for (const entry of window) if (!entry.settled) await this.look(queue, entry);
        }
        wake();
      } catch (error) {
        onError(error as Error);
      } finally {
        polling = false;
      }
    };
    const ticker = setInterval(() => void poll(), POLL_MS);
    // Progress goes on while the head's video runs, and says when Redis stops answering.
    const heartbeat = setInterval(() => {
      const silent = unreachable() > POLL_MS * 2 ? unreachable() : 0;
      // The worker count is known after the first poll; silence is worth saying at once.
      if (tracker.queue || silent) tracker.queue = { workers: tracker.queue?.workers ?? 0, unreachableMs: silent };
      tracker.emit();
    }, 1000);

    const release = (entry: Entry<I>): void => {
      const list = byId.get(entry.id)?.filter((e) => e !== entry) ?? [];
      if (list.length > 0) {
        byId.set(entry.id, list);
        return;
      }
      byId.delete(entry.id);
      // Written: the result leaves Redis (a failure here is harmless, the retention bounds it).
      queue.remove(entry.id).catch(onError);
    };

    let finished = false;
    const aborted = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
    try {
      await bounded(queue.waitUntilReady());
      await bounded(events.waitUntilReady());
      void poll();
      let next = 0;
      while (next < items.length || window.length > 0) {
        while (next < items.length && window.length < windowSize && !signal?.aborted) {
          const entry = await this.entry(items[next++]);
          window.push(entry);
          const same = byId.get(entry.id);
          if (same) {
            // The same work twice in one run (one file under two names): one job serves both.
            entry.settled = same[0].settled;
            same.push(entry);
          } else {
            byId.set(entry.id, [entry]);
            await bounded(this.enqueue(queue, entry));
          }
        }
        if (signal?.aborted) break;
        const head = window[0];
        while (!head.settled && !signal?.aborted) {
          await within(Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]), 250, undefined);
          if (unreachable() > this.remote.timeoutMs) throw this.unreachableError();
        }
        if (signal?.aborted) break;
        window.shift();
        yield [head.item, this.outcome(head, tracker)];
        release(head);
      }
      if (signal?.aborted) {
        // What had finished is written, as a local run does (a job a worker refused is not);
        // the jobs still waiting are withdrawn below.
        for (const entry of window.filter((e) => e.settled)) {
          let outcome: VideoFrames | ErrorRecord;
          try {
            outcome = this.outcome(entry, tracker);
          } catch {
            continue;
          }
          yield [entry.item, outcome];
          release(entry);
        }
        throw signal.reason;
      }
      finished = true;
    } finally {
      clearInterval(ticker);
      clearInterval(heartbeat);
      // A run that stops early (abort, an error, a consumer that stopped) leaves no waiting jobs behind.
      if (!finished) await this.withdraw(queue, window);
      tracker.emit(true, finished);
      // The events client (its copy) sits in a blocking read, or waits for a Redis that never
      // answers, that closing would wait out: drop it.
      dropClient(clients[1]);
      events.close().catch(onError);
      await within(queue.close().catch(onError), 1000, undefined);
      dropClient(clients[0]);
    }
  }

  /** The job of one item: its id from the file's identity (or its path or URL, when this machine cannot read it). */
  private async entry<I extends EmbedItem>(item: I): Promise<Entry<I>> {
    const identity = await fileIdentity(item.path).catch(() => ({ path: item.path }));
    return { item, id: jobId(identity, item, this.settings, this.backboneId), data: jobData(item, this.settings, this.backboneId) };
  }

  /** Adds the job unless Redis has it: a result left by an earlier run is taken, a failure left by one tried again. */
  private async enqueue(queue: Queue, entry: Entry<EmbedItem>): Promise<void> {
    if ((await this.look(queue, entry)) !== 'vanished') {
      if (entry.settled?.kind !== 'failed') return; // waiting, a worker has it, or its result is here
      entry.settled = undefined;
      await queue.remove(entry.id);
    }
    await queue.add(JOB_NAME, entry.data, { jobId: entry.id, attempts: 1, removeOnComplete: KEEP, removeOnFail: KEEP });
  }

  /** Looks at one job: settles it when it finished, or says it vanished. */
  private async look(queue: Queue, entry: Entry<EmbedItem>): Promise<'vanished' | 'pending' | 'settled'> {
    const job: Job | undefined = await queue.getJob(entry.id);
    if (!job) return 'vanished';
    const state = await job.getState();
    if (state === 'completed') entry.settled ??= { kind: 'completed', value: job.returnvalue };
    else if (state === 'failed') entry.settled ??= { kind: 'failed', reason: job.failedReason };
    else return 'pending';
    return 'settled';
  }

  /** What a settled job gives: frames, or an error record; a job a worker refused ends the run. */
  private outcome(entry: Entry<EmbedItem>, tracker: ProgressTracker): VideoFrames | ErrorRecord {
    const settled = entry.settled!;
    const path = entry.item.path;
    if (settled.kind === 'failed') {
      if (settled.reason.startsWith(STALLED_REASON)) {
        tracker.fail('WORKER_FAILED');
        return { path, error: { code: 'WORKER_FAILED', message: 'the workers running this video died (or went silent past --stall-timeout) more often than they allow (--max-stalls); see their logs' } };
      }
      // A worker's reason starts with its name (framewise@host:pid).
      throw new QueueError(`The job of ${path} failed: ${settled.reason}`);
    }
    const { outcome } = decodeResult(path, settled.value);
    if ('error' in outcome) {
      tracker.fail(outcome.error.code);
    } else {
      tracker.succeed(outcome);
      if (outcome.cached) tracker.cacheHits += 1;
      else {
        tracker.videosDecoded += 1;
        tracker.framesEmbedded += outcome.clips.length * outcome.frames;
      }
      if (outcome.backend) this.lastBackend = outcome.backend;
    }
    tracker.emit();
    return outcome;
  }

  /** Removes the jobs of `window` still waiting (a worker's job in hand runs to its end). */
  private async withdraw(queue: Queue, window: ReadonlyArray<Entry<EmbedItem>>): Promise<void> {
    const ids = [...new Set(window.filter((e) => !e.settled).map((e) => e.id))];
    const removed = await within(Promise.all(ids.map((id) => queue.remove(id).catch(() => 0))), 1000, [] as number[]);
    debug('remote: withdrew %d of %d waiting jobs', removed.filter((n) => n === 1).length, ids.length);
  }

  private unreachableError(): QueueError {
    return new QueueError(
      `Redis at ${redactUrl(this.remote.redis)} has not answered for ${Math.round(this.remote.timeoutMs / 1000)} s (the limit: --redis-timeout, remote.timeoutMs); ` +
        `what finished is written, run again with --resume to carry on (coordinator ${hostname()})`,
    );
  }
}

/** What `createRemoteRunner()` needs: the backbone the workers must run, the settings, the queue. */
export interface RemoteRunnerSettings {
  backbone: BackboneSpec;
  engine?: EngineRequest;
  backend: BackendRequest;
  /** Frame side; must match the backbone's input size. @default the backbone's */
  size: number | undefined;
  sampling: Sampling;
  fit: Fit;
  /** The per-video decode timeout the workers apply. @default theirs */
  timeoutMs: number | undefined;
  /** The cache folder (where the backbone's id is remembered), or false. */
  cache: string | false;
  remote: Required<RemoteSettings>;
  signal?: AbortSignal;
}

/**
 * The runner of a run across machines. The backbone is only looked up (its id, size and D;
 * a registry backbone seen before is not even loaded): the workers run it.
 */
export async function createRemoteRunner(settings: RemoteRunnerSettings): Promise<RemoteRunner> {
  const { backbone, engine, backend, size, sampling, fit, timeoutMs, cache, remote, signal } = settings;
  const embedder = await createFrameEmbedder({ backbone, engine, backend, cacheDir: cache === false ? undefined : cache, workers: 0, signal, lazy: true });
  try {
    const side = checkSize(size, embedder.inputSize);
    return new RemoteRunner(embedder, remote, { sampling, size: side, fit, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  } catch (error) {
    await embedder.dispose();
    throw error;
  }
}
