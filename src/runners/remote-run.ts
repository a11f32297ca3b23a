/**
 * `RemoteRun`: one run of the `RemoteRunner`, as the hooks of its ordered window (see
 * embedding/ordered-window.ts). It holds the run's connections to Redis, the queue and its
 * events, the jobs in the window, the poll and the heartbeat.
 */
import { hostname } from 'node:os';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { QueueError } from '../errors.js';
import { fileIdentity } from '../embedding/cache.js';
import type { WindowHooks } from '../embedding/ordered-window.js';
import type { ProgressTracker } from '../embedding/progress.js';
import type { EmbedItem, ErrorRecord, VideoFrames } from '../embedding/runner.js';
import { debug } from '../log.js';
import { checkEviction, Contact, dropClient, redisClient, within } from './connection.js';
import type { ResolvedRemote } from '../embedding/options.js';
import {
  KEY_PREFIX,
  readPresence,
  removePresence,
  workerNames,
  writePresence,
  type StalledWait,
  type WorkerPresence,
} from './presence.js';
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
type Result = VideoFrames | ErrorRecord;

/** One item's job. */
export interface Entry<I> {
  item: I;
  id: string;
  data: JobData;
  settled?: Settled;
}

/** What a run needs from its runner. */
export interface RemoteRunContext {
  remote: ResolvedRemote;
  settings: JobSettings;
  backboneId: string;
  /** Told the engine of each result that came from a worker. */
  onBackend(name: string): void;
}

export class RemoteRun<I extends EmbedItem> implements WindowHooks<I, Entry<I>, Result> {
  // Connections of our own: BullMQ cannot drop one that never connected, and a Redis that is
  // gone must not keep the process alive retrying.
  private readonly clients: [Redis, Redis];
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  /** Redis is "reachable" while its answers keep coming; every wait is raced against it. */
  private readonly contact: Contact;
  /** The entries not yet taken, by job id: the same work twice in one run (one file under two names) shares one job. */
  private readonly byId = new Map<string, Array<Entry<I>>>();
  private windowSize = MIN_WINDOW;
  private polling = false;
  private wake: () => void = () => undefined;
  private readonly aborted: Promise<void>;
  private readonly ticker: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly onError = (error: Error): void => debug('remote: redis: %s', error.message);
  /** `framewise@host:pid`, in the queue's coordinators (for `framewise status`). */
  private readonly name = `framewise@${hostname()}:${process.pid}`;
  private readonly startedAt = Date.now();

  constructor(
    private readonly context: RemoteRunContext,
    private readonly tracker: ProgressTracker,
    readonly signal: AbortSignal | undefined,
  ) {
    const { redis, queue, timeoutMs, redisCa } = context.remote;
    this.clients = [
      redisClient(redis, this.onError, { redisCa }),
      redisClient(redis, this.onError, { redisCa }),
    ];
    this.queue = new Queue(queue, {
      connection: this.clients[0],
      streams: { events: { maxLen: EVENTS_KEPT } },
    });
    this.events = new QueueEvents(queue, { connection: this.clients[1] });
    this.queue.on('error', this.onError);
    this.events.on('error', this.onError);
    this.events.on('completed', ({ jobId: id, returnvalue }) =>
      this.settle(id, { kind: 'completed', value: returnvalue }),
    );
    this.events.on('failed', ({ jobId: id, failedReason }) =>
      this.settle(id, { kind: 'failed', reason: failedReason }),
    );
    this.contact = new Contact(timeoutMs, () => this.unreachableError());
    this.ticker = setInterval(() => void this.poll(), POLL_MS);
    this.heartbeat = setInterval(() => this.beat(), 1000);
    this.aborted = new Promise<void>((resolve) =>
      signal?.addEventListener('abort', () => resolve(), { once: true }),
    );
  }

  async open(): Promise<void> {
    await this.contact.bounded(this.queue.waitUntilReady());
    await this.contact.bounded(
      checkEviction(this.clients[0], redactUrl(this.context.remote.redis), this.context.remote.strictRedis),
    );
    await this.contact.bounded(this.events.waitUntilReady());
    void this.poll();
  }

  /** It grows with the workers, so Redis holds the results in flight, never the whole folder's. */
  size(): number {
    return this.windowSize;
  }

  /** The item's job: its id from the file's identity (or its path or URL, when this machine cannot read it). */
  async start(item: I): Promise<Entry<I>> {
    const identity = await fileIdentity(item.path).catch(() => ({ path: item.path }));
    const { settings, backboneId } = this.context;
    const entry: Entry<I> = {
      item,
      id: jobId(identity, item, settings, backboneId),
      data: jobData(item, settings, backboneId),
    };
    const same = this.byId.get(entry.id);
    if (same) {
      entry.settled = same[0].settled;
      same.push(entry);
    } else {
      this.byId.set(entry.id, [entry]);
      await this.contact.bounded(this.enqueue(entry));
    }
    return entry;
  }

  /** Waits for an event (or the poll) to settle `entry`; Redis silent past the limit ends the run. */
  async settled(entry: Entry<I>): Promise<void> {
    while (!entry.settled && !this.signal?.aborted) {
      await within(
        Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), this.aborted]),
        250,
        undefined,
      );
      if (this.contact.lost()) throw this.unreachableError();
    }
  }

  /** What a settled job gives: frames, or an error record; a job a worker refused ends the run. */
  take(entry: Entry<I>): Result {
    const settled = entry.settled!;
    const path = entry.item.path;
    if (settled.kind === 'failed') {
      if (settled.reason.startsWith(STALLED_REASON)) {
        this.tracker.fail('WORKER_FAILED');
        return {
          path,
          error: {
            code: 'WORKER_FAILED',
            message:
              'the workers running this video died (or went silent past --stall-timeout) more often than they allow (--max-stalls); see their logs',
          },
        };
      }
      // A worker's reason starts with its name (framewise@host:pid).
      throw new QueueError(`The job of ${path} failed: ${settled.reason}`);
    }
    const { outcome } = decodeResult(path, settled.value);
    this.count(outcome);
    return outcome;
  }

  /** Written: the result leaves Redis (a failure here is harmless, the retention bounds it). */
  taken(entry: Entry<I>): void {
    const list = this.byId.get(entry.id)?.filter((e) => e !== entry) ?? [];
    if (list.length > 0) {
      this.byId.set(entry.id, list);
      return;
    }
    this.byId.delete(entry.id);
    this.queue.remove(entry.id).catch(this.onError);
  }

  async cleanup(_rest: readonly Entry<I>[], done: boolean): Promise<void> {
    clearInterval(this.ticker);
    clearInterval(this.heartbeat);
    // A run that stops early (abort, an error, a consumer that stopped) leaves no waiting jobs behind.
    if (!done) await this.withdraw();
    this.tracker.emit(true, done);
    await within(
      removePresence(this.clients[0], this.context.remote.queue, 'coordinators', this.name).catch(
        this.onError,
      ),
      1000,
      undefined,
    );
    // The events client (its copy) sits in a blocking read, or waits for a Redis that never
    // answers, that closing would wait out: drop it.
    dropClient(this.clients[1]);
    this.events.close().catch(this.onError);
    await within(this.queue.close().catch(this.onError), 1000, undefined);
    dropClient(this.clients[0]);
  }

  /** Counts a result in the progress. */
  private count(outcome: Result): void {
    if ('error' in outcome) {
      this.tracker.fail(outcome.error.code);
    } else {
      this.tracker.succeed(outcome);
      if (outcome.cached) this.tracker.cacheHits += 1;
      else {
        this.tracker.videosDecoded += 1;
        this.tracker.framesEmbedded += outcome.clips.length * outcome.frames;
      }
      if (outcome.backend) this.context.onBackend(outcome.backend);
    }
    this.tracker.emit();
  }

  /** An event: the job `id` finished. */
  private settle(id: string, settled: Settled): void {
    const list = this.byId.get(id);
    if (!list) return;
    for (const entry of list) entry.settled ??= settled;
    this.wake();
  }

  /**
   * The entries not taken that have not settled, in input order (a loop that awaits looks at
   * `settled` again: a result taken meanwhile has left Redis, and is not to be enqueued again).
   */
  private waiting(): Array<Entry<I>> {
    return [...this.byId.values()].flat().filter((e) => !e.settled);
  }

  /** The poll: workers connected, the head's state (an event may have been missed), jobs vanished. */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const connected = workerNames(await this.queue.getWorkers());
      const workers = connected.length;
      this.contact.heard();
      this.windowSize = Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, workers * WINDOW_PER_WORKER));
      const head = this.waiting()[0];
      const seen = head ? await this.look(head) : 'pending';
      const waitingOn = head && seen === 'pending' ? await this.stalled(head, connected) : undefined;
      this.tracker.queue = { workers, unreachableMs: 0, ...(waitingOn ? { waitingOn } : {}) };
      await this.present(waitingOn);
      if (seen === 'vanished') {
        // Redis lost its data (a restart without persistence): enqueue every job again.
        for (const entry of this.waiting())
          if (!entry.settled && (await this.look(entry)) === 'vanished') await this.enqueue(entry);
      } else if (seen === 'settled') {
        // The head finished without its event (the stream was trimmed, or the listener was
        // reconnecting): look at the rest of the window too.
        for (const entry of this.waiting()) if (!entry.settled) await this.look(entry);
      }
      this.wake();
    } catch (error) {
      this.onError(error as Error);
    } finally {
      this.polling = false;
    }
  }

  /**
   * The head's job, when a worker holds it but is no longer connected (killed, or cut off):
   * the output waits on it until its lock expires and a live worker's stalled check (every
   * `--stall-timeout` of theirs) hands it on; how long that may take at most.
   */
  private async stalled(head: Entry<I>, connected: string[]): Promise<StalledWait | undefined> {
    const job: Job | undefined = await this.queue.getJob(head.id);
    const worker = job?.processedBy;
    if (!job || !worker || connected.includes(worker) || (await job.getState()) !== 'active')
      return undefined;
    const client = this.clients[0];
    const lockMs = Math.max(
      0,
      await client.pttl(`${KEY_PREFIX}:${this.context.remote.queue}:${head.id}:lock`),
    );
    const present = await readPresence<WorkerPresence>(client, this.context.remote.queue, 'workers');
    const live = connected
      .map((name) => present.get(name)?.stallTimeoutMs)
      .filter((ms): ms is number => ms !== undefined);
    const intervalMs = live.length > 0 ? Math.min(...live) : (present.get(worker)?.stallTimeoutMs ?? 30_000);
    return { path: head.item.path, jobId: head.id, worker, handedOnInMs: lockMs + intervalMs };
  }

  /** This coordinator in the queue's coordinators, for `framewise status`. */
  private async present(waitingOn: StalledWait | undefined): Promise<void> {
    const { tracker } = this;
    const [host, pid] = [hostname(), process.pid];
    const value = {
      name: this.name,
      host,
      pid,
      startedAt: this.startedAt,
      updatedAt: Date.now(),
      videosDone: tracker.videosDone,
      videosTotal: tracker.videosTotal,
      ...(waitingOn ? { waitingOn } : {}),
    };
    await writePresence(this.clients[0], this.context.remote.queue, 'coordinators', value);
  }

  /** Progress goes on while the head's video runs, and says when Redis stops answering. */
  private beat(): void {
    const silent = this.contact.silentMs() > POLL_MS * 2 ? this.contact.silentMs() : 0;
    // The worker count is known after the first poll; silence is worth saying at once.
    if (this.tracker.queue || silent)
      this.tracker.queue = {
        ...this.tracker.queue,
        workers: this.tracker.queue?.workers ?? 0,
        unreachableMs: silent,
      };
    this.tracker.emit();
  }

  /** Adds the job unless Redis has it: a result left by an earlier run is taken, a failure left by one tried again. */
  private async enqueue(entry: Entry<I>): Promise<void> {
    if ((await this.look(entry)) !== 'vanished') {
      if (entry.settled?.kind !== 'failed') return; // waiting, a worker has it, or its result is here
      entry.settled = undefined;
      await this.queue.remove(entry.id);
    }
    await this.queue.add(JOB_NAME, entry.data, {
      jobId: entry.id,
      attempts: 1,
      removeOnComplete: KEEP,
      removeOnFail: KEEP,
    });
  }

  /** Looks at one job: settles it when it finished, or says it vanished. */
  private async look(entry: Entry<I>): Promise<'vanished' | 'pending' | 'settled'> {
    // The state first, then the job: read the other way round, a job that completed between the
    // two reads would be 'completed' with the return value it did not have yet.
    const state = await this.queue.getJobState(entry.id);
    if (state === 'unknown') return 'vanished';
    if (state !== 'completed' && state !== 'failed') return 'pending';
    const job: Job | undefined = await this.queue.getJob(entry.id);
    if (!job) return 'vanished';
    entry.settled ??=
      state === 'completed'
        ? { kind: 'completed', value: job.returnvalue }
        : { kind: 'failed', reason: job.failedReason };
    return 'settled';
  }

  /** Removes the jobs still waiting (a worker's job in hand runs to its end). */
  private async withdraw(): Promise<void> {
    const ids = [...new Set(this.waiting().map((e) => e.id))];
    const removed = await within(
      Promise.all(ids.map((id) => this.queue.remove(id).catch(() => 0))),
      1000,
      [] as number[],
    );
    debug('remote: withdrew %d of %d waiting jobs', removed.filter((n) => n === 1).length, ids.length);
  }

  private unreachableError(): QueueError {
    const { redis, timeoutMs } = this.context.remote;
    return new QueueError(
      `Redis at ${redactUrl(redis)} has not answered for ${Math.round(timeoutMs / 1000)} s (the limit: --redis-timeout, remote.timeoutMs); ` +
        `what finished is written, run again with --resume to carry on (coordinator ${hostname()})`,
    );
  }
}
