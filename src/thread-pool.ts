/**
 * One worker-thread pool for the work that must leave the main thread: the decode workers
 * (ingest/decode-pool.ts) and the ONNX Runtime worker (engines/onnx/pool.ts). Both halves are
 * here: {@link ThreadPool} on the main thread, {@link serveTasks} in each worker.
 *
 * The rules it keeps:
 * - One task per worker at a time, at most `size` workers, started when work comes; tasks
 *   beyond wait in order (first in, first out).
 * - Tasks and results cross with a transfer list: buffers are moved, never copied.
 * - Abort: the caller's promise rejects at once with the signal's reason, and the worker is
 *   told (a message) to abort the task's own AbortController; the worker stays busy until its
 *   task has returned, so no new task goes to it before.
 * - No worker is ever terminated: a worker terminated inside a native call (node-av,
 *   onnxruntime) can abort the process. `close()` asks each worker to close; a worker lets
 *   its running task return, runs its own clean-up, closes its port and then ends by itself.
 *   An idle worker is unref'd, so it never keeps the process alive.
 * - A worker that dies (an uncaught error, out of memory) fails its task with the pool's
 *   `died` error; the next task gets a new worker.
 *
 * Not piscina: its abort terminates the worker running the task (what node-av warns about),
 * and a task's result order, transfer lists and our error classes need as much code around
 * it as this file.
 */
import { parentPort, type TransferListItem, Worker } from 'node:worker_threads';
import { FfmpegError, FramewiseError, IngestError, ModelError, ShapeError, UsageError } from './errors.js';
import { debug } from './log.js';

/** Main thread → worker. */
export type ToPoolWorker<Task> =
  | { type: 'task'; id: number; task: Task }
  | { type: 'abort'; id: number }
  | { type: 'close' };

/** Worker → main thread. `note` is a message outside any task (the pool's `onNote`). */
export type FromPoolWorker<Result> =
  | { type: 'done'; id: number; result: Result }
  | { type: 'failed'; id: number; error: SerializedError }
  | { type: 'note'; note: unknown };

/** An error as it crosses threads: its class name, message, stack and own fields (code, path...). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, unknown>;
}

const CLASSES: Record<string, new (...args: never[]) => Error> = {
  FramewiseError,
  IngestError,
  FfmpegError,
  ModelError,
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
    value: `${error.stack ?? `${error.name}: ${error.message}`}\n    [in a worker thread]`,
    writable: true,
    configurable: true,
  });
  return revived;
}

/** Options of {@link ThreadPool}. */
export interface ThreadPoolOptions<Task> {
  /** For debuglog lines: "decode", "onnx". */
  name: string;
  /** The compiled worker module; it calls {@link serveTasks}. */
  script: URL;
  /** Most workers, each running one task at a time. */
  size: number;
  /** Each worker's `workerData` (structured-cloned into every worker started). */
  workerData?: unknown;
  /** The error a task gets when its worker dies under it (`why` says how). */
  died(why: string, task: Task): Error;
  /** Told of each `note` a worker sends. */
  onNote?(note: unknown): void;
  /** Awaited before the first task goes to a worker (modules the workers' libraries need loaded here first). */
  before?: Promise<unknown>;
}

interface Job<Task, Result> {
  id: number;
  task: Task;
  transfer: TransferListItem[];
  resolve(result: Result): void;
  reject(error: unknown): void;
  /** The caller gave up (abort, close): the result is dropped when it comes. */
  abandoned: boolean;
}

interface Slot<Task, Result> {
  worker: Worker;
  job?: Job<Task, Result>;
  /** The worker's exit code, once it has exited. */
  exited: Promise<number>;
}

/** Worker threads that each run one task at a time. See the module comment. */
export class ThreadPool<Task, Result> {
  private readonly slots: Array<Slot<Task, Result>> = [];
  private readonly queue: Array<Job<Task, Result>> = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: ThreadPoolOptions<Task>) {}

  get size(): number {
    return this.options.size;
  }

  /** Runs `task` on a worker; `transfer` moves its buffers there. Rejects at once on abort. */
  run(task: Task, options: { transfer?: TransferListItem[]; signal?: AbortSignal } = {}): Promise<Result> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.closed) return Promise.reject(new Error(`The ${this.options.name} pool is closed`));
    const id = this.nextId++;
    return new Promise<Result>((resolve, reject) => {
      const onAbort = (): void => {
        job.abandoned = true;
        const queued = this.queue.indexOf(job);
        if (queued >= 0) this.queue.splice(queued, 1);
        else this.post(this.slots.find((s) => s.job === job)?.worker, { type: 'abort', id });
        reject(signal!.reason);
      };
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      const job: Job<Task, Result> = {
        id,
        task,
        transfer: options.transfer ?? [],
        resolve: (result) => {
          done();
          resolve(result);
        },
        reject: (error) => {
          done();
          reject(error);
        },
        abandoned: false,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(job);
      if (this.options.before) this.options.before.then(() => this.pump());
      else this.pump();
    });
  }

  private post(
    worker: Worker | undefined,
    message: ToPoolWorker<Task>,
    transfer: TransferListItem[] = [],
  ): void {
    worker?.postMessage(message, transfer);
  }

  /** Gives queued tasks to idle workers, starting workers up to `size`. */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot && this.slots.length < this.options.size) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref();
      this.post(slot.worker, { type: 'task', id: job.id, task: job.task }, job.transfer);
    }
  }

  private spawn(): Slot<Task, Result> {
    const { name, script, workerData, size } = this.options;
    const worker = new Worker(script, { workerData, stdout: false, stderr: false });
    let exited!: (code: number) => void;
    const slot: Slot<Task, Result> = { worker, exited: new Promise((resolve) => (exited = resolve)) };
    this.slots.push(slot);
    const threadId = worker.threadId; // -1 once it has exited
    debug('%s pool: worker %d started (%d of %d)', name, threadId, this.slots.length, size);
    worker.on('message', (message: FromPoolWorker<Result>) => {
      if (message.type === 'note') return void this.options.onNote?.(message.note);
      const job = slot.job;
      if (!job || job.id !== message.id) return;
      slot.job = undefined;
      slot.worker.unref(); // idle: never the reason the process stays up
      this.pump();
      if (job.abandoned) return;
      if (message.type === 'done') job.resolve(message.result);
      else job.reject(reviveError(message.error));
    });
    const died = (why: string, code = 1): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      exited(code);
      const job = slot.job;
      slot.job = undefined;
      if (job && !job.abandoned) job.reject(this.options.died(why, job.task));
      this.pump();
    };
    worker.on('error', (error) => died(`the ${name} worker failed: ${error.message}`));
    worker.on('exit', (code) => {
      debug('%s pool: worker %d exited with code %d', name, threadId, code);
      died(`the ${name} worker exited with code ${code}`, code);
    });
    return slot;
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
    const closed = (): DOMException =>
      new DOMException(`The ${this.options.name} pool was closed`, 'AbortError');
    for (const job of this.queue.splice(0)) job.reject(closed());
    const exits = [...this.slots].map((slot) => {
      const job = slot.job;
      if (job) {
        if (!job.abandoned) job.reject(closed());
        job.abandoned = true;
        this.post(slot.worker, { type: 'abort', id: job.id });
      }
      this.post(slot.worker, { type: 'close' });
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

/** What a worker's handler gives back: the result, and the buffers in it to move. */
export interface TaskResult<Result> {
  result: Result;
  transfer?: TransferListItem[];
}

/**
 * The worker's half: runs each task through `handle` with an AbortSignal the pool can abort,
 * and replies. On `close` it waits for the running tasks, runs `onClose` (release what the
 * worker holds), then closes its port, so the thread ends by itself.
 */
export function serveTasks<Task, Result>(
  handle: (task: Task, signal: AbortSignal) => Promise<TaskResult<Result>>,
  onClose?: () => Promise<void> | void,
): void {
  const port = parentPort;
  if (!port) throw new Error('framewise: serveTasks() runs in a worker thread');
  const running = new Map<number, { controller: AbortController; done: Promise<void> }>();
  const post = (message: FromPoolWorker<Result>, transfer: TransferListItem[] = []): void =>
    port.postMessage(message, transfer);
  const run = async (id: number, task: Task, controller: AbortController): Promise<void> => {
    try {
      const { result, transfer } = await handle(task, controller.signal);
      post({ type: 'done', id, result }, transfer);
    } catch (error) {
      post({ type: 'failed', id, error: serializeError(error) });
    } finally {
      running.delete(id);
    }
  };
  port.on('message', (message: ToPoolWorker<Task>) => {
    if (message.type === 'task') {
      const controller = new AbortController();
      running.set(message.id, { controller, done: run(message.id, message.task, controller) });
    } else if (message.type === 'abort') {
      running.get(message.id)?.controller.abort(new DOMException('The task was aborted', 'AbortError'));
    } else {
      void Promise.all([...running.values()].map((r) => r.done))
        .then(() => onClose?.())
        .catch((error: unknown) => debug('worker: clean-up failed: %s', (error as Error).message))
        .finally(() => port.close());
    }
  });
}

/** Tells the main thread's pool something outside any task (its `onNote`). */
export function noteToPool(note: unknown): void {
  parentPort?.postMessage({ type: 'note', note } satisfies FromPoolWorker<never>);
}
