/**
 * A small pool of decode workers (`worker_threads`): each video's whole decode runs in a
 * worker, through the same `VideoDecoder` as on the main thread (decoders.ts), unchanged.
 *
 * Why: the libav decoder is a chain of async native calls (read, send, receive, convert,
 * resize), one in flight at a time, each a round trip to its thread's event loop. On the main
 * thread every round trip waits behind whatever holds the loop, above all ONNX Runtime's
 * `session.run` (synchronous, ~5 ms a frame), so two decodes could not fill two cores. In a
 * worker the loop has nothing else to do. The native calls still run on libuv's pool, which
 * is one per process (see `libuvPoolSize`).
 *
 * The rules it keeps:
 * - One video per worker at a time, and at most `workers` workers: the memory held is what
 *   the same number of decodes held on the main thread. Tasks beyond wait in order.
 * - Frames come back as transferred ArrayBuffers (each clip's `data`), never copied.
 * - Abort: the caller's promise rejects at once with the signal's reason, and the worker is
 *   told (a message) to abort its own AbortController; the worker stays busy until its decode
 *   has returned, so no new video goes to it before.
 * - No worker is ever terminated: node-av's README warns that a worker terminated inside a
 *   native call can abort the process. `close()` asks each worker to close its port, and a
 *   worker then ends on its own once its in-flight native calls have returned. An idle worker
 *   is unref'd, so it never keeps the process alive.
 * - A worker that dies (an uncaught error, out of memory) fails its video with an `FFMPEG`
 *   error record; the next video gets a new worker.
 *
 * Not piscina: its abort terminates the worker running the task (what node-av warns about),
 * and a task's result order, transfer lists and our error classes need as much code around
 * it as this file.
 *
 * The worker file is `dist/ingest/decode-worker.js`; from TypeScript source (vitest) the
 * build output is used, as for the tfjs pool.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FfmpegError, FramewiseError, IngestError, ShapeError, UsageError } from '../errors.js';
import { debug } from '../log.js';
import { invalid } from '../validate.js';
import type { DecodeOptions, DecoderName, VideoDecoder } from './decoders.js';
import { loadLibav } from './decoders/libav/av.js';
import type { ClipPlan, FrameClip, ProbeResult } from './types.js';

/** The options a worker receives: everything but the signal (not cloneable), and the video's metadata. */
export type WorkerExtractOptions = Omit<DecodeOptions, 'signal'> & { probe: ProbeResult };

/** Main thread → worker. */
export type ToDecodeWorker =
  | {
      type: 'decode';
      id: number;
      decoder: DecoderName;
      path: string;
      plans: ClipPlan[];
      options: WorkerExtractOptions;
    }
  | { type: 'abort'; id: number }
  | { type: 'close' };

/** An error as it crosses threads: its class name, message, stack and own fields (code, path...). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, unknown>;
}

/** Worker → main thread. */
export type FromDecodeWorker =
  | { type: 'done'; id: number; clips: FrameClip[] }
  | { type: 'failed'; id: number; error: SerializedError }
  /** The worker has given FFmpeg's log callback back (decode-worker.ts): this thread sets its own again. */
  | { type: 'log' };

const CLASSES: Record<string, new (...args: never[]) => Error> = {
  FramewiseError,
  IngestError,
  FfmpegError,
  ShapeError,
  UsageError,
};

/** `error` as plain data that structured clone keeps (own fields of primitive or array value only). */
export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    const plain = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v);
    if (plain(value) || (Array.isArray(value) && value.every(plain))) fields[key] = value;
  }
  return { name: error.name, message: error.message, stack: error.stack, fields };
}

/** The error again, of its class where it is one of framewise's (so `instanceof` and `code` hold). */
export function reviveError(error: SerializedError): Error {
  const Class = CLASSES[error.name];
  const revived: Error = Class ? Object.create(Class.prototype) : new Error(error.message);
  Object.assign(revived, error.fields);
  Object.defineProperty(revived, 'message', { value: error.message, writable: true, configurable: true });
  Object.defineProperty(revived, 'name', { value: error.name, writable: true, configurable: true });
  Object.defineProperty(revived, 'stack', {
    value: `${error.stack ?? `${error.name}: ${error.message}`}\n    [in a decode worker]`,
    writable: true,
    configurable: true,
  });
  return revived;
}

/** Options of {@link DecodePool}. */
export interface DecodePoolOptions {
  /** Worker threads, each decoding one video at a time. @default the cores (`os.availableParallelism()`) */
  workers?: number;
}

interface Task {
  id: number;
  message: Extract<ToDecodeWorker, { type: 'decode' }>;
  resolve(clips: FrameClip[]): void;
  reject(error: unknown): void;
  /** The caller gave up (abort): the result is dropped when it comes. */
  abandoned: boolean;
}

interface Slot {
  worker: Worker;
  task?: Task;
  /** The worker's exit code, once it has exited. */
  exited: Promise<number>;
}

/** FFmpeg's log callback, set again in this thread once a worker has reset it (see decode-worker.ts): to debuglog, as loadLibav() sets it. */
async function takeLog(): Promise<void> {
  const av = await loadLibav().catch(() => undefined);
  av?.Log.setCallback((_level, message) => debug('libav: %s', message.trim()));
}

/** Where the compiled worker lives: beside this module in dist, or dist when run from src. */
function workerScript(): URL {
  const beside = new URL('./decode-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL('../../dist/ingest/decode-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new FramewiseError(
    'FFMPEG_NOT_FOUND',
    `the decode worker ${fileURLToPath(built)} is missing; run \`npm run build\` first`,
  );
}

/** The decode workers of one run. See the module comment. */
export class DecodePool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;
  /** sharp and node-av are loaded here first: their libraries must outlive every worker (sharp's docs, "Worker threads"). */
  private readonly preloaded: Promise<unknown>;

  constructor(options: DecodePoolOptions = {}) {
    this.size = Math.max(1, options.workers ?? availableParallelism());
    // Never rejects: a module that does not load here fails in the worker too, as that video's error.
    this.preloaded = Promise.all([
      import('sharp').catch(() => undefined),
      loadLibav().catch(() => undefined),
    ]);
  }

  /** The frames of `plans` from `path`, decoded by `decoder` in a worker; rejects at once on abort. */
  decode(
    decoder: DecoderName,
    path: string,
    plans: ClipPlan[],
    options: DecodeOptions & { probe: ProbeResult },
  ): Promise<FrameClip[]> {
    const { signal, ...rest } = options;
    signal?.throwIfAborted();
    if (this.closed) return Promise.reject(new Error('The decode pool is closed'));
    const id = this.nextId++;
    return new Promise<FrameClip[]>((resolve, reject) => {
      const onAbort = (): void => {
        task.abandoned = true;
        const queued = this.queue.indexOf(task);
        if (queued >= 0) this.queue.splice(queued, 1);
        else
          this.slots
            .find((s) => s.task === task)
            ?.worker.postMessage({ type: 'abort', id } satisfies ToDecodeWorker);
        reject(signal!.reason);
      };
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      const task: Task = {
        id,
        message: { type: 'decode', id, decoder, path, plans, options: rest },
        resolve: (clips) => {
          done();
          resolve(clips);
        },
        reject: (error) => {
          done();
          reject(error);
        },
        abandoned: false,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(task);
      this.preloaded.then(() => this.pump());
    });
  }

  /** Gives queued tasks to idle workers, starting workers up to `size`. */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => !s.task);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.ref();
      slot.worker.postMessage(task.message);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(workerScript(), { stdout: false, stderr: false });
    let exited!: (code: number) => void;
    const slot: Slot = { worker, exited: new Promise((resolve) => (exited = resolve)) };
    this.slots.push(slot);
    const threadId = worker.threadId; // -1 once it has exited
    debug('decode pool: worker %d started (%d of %d)', threadId, this.slots.length, this.size);
    worker.on('message', (message: FromDecodeWorker) => {
      if (message.type === 'log') return void this.preloaded.then(takeLog);
      const task = slot.task;
      if (!task || task.id !== message.id) return;
      this.release(slot);
      if (task.abandoned) return;
      if (message.type === 'done') task.resolve(message.clips);
      else task.reject(reviveError(message.error));
    });
    const died = (why: string, code = 1): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      exited(code);
      const task = slot.task;
      slot.task = undefined;
      if (task && !task.abandoned) {
        task.reject(
          new FfmpegError({
            command: `decode worker ${task.message.path}`,
            exitCode: null,
            signal: null,
            stderr: why,
          }),
        );
      }
      this.pump();
    };
    worker.on('error', (error) => died(`the decode worker failed: ${error.message}`));
    worker.on('exit', (code) => {
      debug('decode pool: worker %d exited with code %d', threadId, code);
      died(`the decode worker exited with code ${code}`, code);
    });
    return slot;
  }

  private release(slot: Slot): void {
    slot.task = undefined;
    slot.worker.unref(); // idle: never the reason the process stays up
    this.pump();
  }

  /**
   * Stops taking work and lets every worker end on its own (see the module comment): queued
   * and running tasks reject with an AbortError, and the running ones are aborted in their
   * worker. Waits up to `waitMs` for the workers to exit, and resolves to their exit codes
   * (0: ended by itself), null for one still in a native call when the wait ended.
   */
  async close(waitMs = 2000): Promise<Array<number | null>> {
    if (this.closed) return [];
    this.closed = true;
    const closed = (): DOMException => new DOMException('The decode pool was closed', 'AbortError');
    for (const task of this.queue.splice(0)) task.reject(closed());
    const exits = [...this.slots].map((slot) => {
      const task = slot.task;
      if (task) {
        if (!task.abandoned) task.reject(closed());
        task.abandoned = true;
        slot.worker.postMessage({ type: 'abort', id: task.id } satisfies ToDecodeWorker);
      }
      slot.worker.postMessage({ type: 'close' } satisfies ToDecodeWorker);
      slot.worker.ref(); // this wait must hold the event loop (a bare top-level await would end with exit code 13)
      return slot.exited;
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), waitMs)));
    const codes = await Promise.all(exits.map((exit) => Promise.race([exit, late])));
    clearTimeout(timer);
    // A worker still in a native call ends by itself, later; it does not hold the process.
    for (const slot of this.slots) slot.worker.unref();
    return codes;
  }
}

/**
 * `inner` with its decodes run on `pool`'s workers: a video opens on the calling thread (its
 * metadata read there), and each decode goes to a worker with that metadata, where the
 * worker's own decoder of the same name opens it again without reading anything.
 */
export function pooledDecoder(inner: VideoDecoder, pool: DecodePool): VideoDecoder {
  return {
    name: inner.name,
    reason: inner.reason,
    async open(path, options) {
      const video = await inner.open(path, options);
      return {
        path,
        metadata: video.metadata,
        decode: (plans, o) => pool.decode(inner.name, path, plans, { ...o, probe: video.metadata }),
        close: () => video.close(),
      };
    },
    close: async () => void (await pool.close()),
  };
}

/**
 * Decode workers for a run: for `libav`, one per video decoding at once (`concurrency`) up to
 * the cores; none for `cli`, whose ffmpeg processes already run off this thread.
 * `FRAMEWISE_DECODE_WORKERS` overrides it (0: decode on the main thread), a lever for
 * measuring (`npm run bench:threads`).
 */
export function decodeWorkers(
  decoder: DecoderName,
  concurrency: number,
  env: NodeJS.ProcessEnv = process.env,
  cores = availableParallelism(),
): number {
  const given = env.FRAMEWISE_DECODE_WORKERS?.trim();
  if (given) {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0)
      throw invalid('FRAMEWISE_DECODE_WORKERS', 'a non-negative integer', given);
    return n;
  }
  return decoder === 'libav' ? Math.max(1, Math.min(concurrency, cores)) : 0;
}

/**
 * The libuv pool size a process decoding with `workers` workers wants: one thread for each
 * worker's libav call and one for its sharp resize, and never fewer than libuv's 4. It takes
 * effect only through `UV_THREADPOOL_SIZE` set before the pool first starts, and an ES module
 * loader starts it while it reads the entry's imports: so the environment, or a CommonJS
 * entry's first line (bin/framewise.cjs), never a module body.
 */
export function libuvPoolSize(workers = availableParallelism()): number {
  return Math.max(4, 2 * workers);
}
