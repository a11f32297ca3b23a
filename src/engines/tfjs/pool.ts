/**
 * A pool of resident inference workers (`worker_threads`), each with its own tfjs backend
 * and its own copy of the backbone, behind the `FrameEmbedder` contract.
 *
 * Why: the tfjs wasm backend is single-threaded in Node, so one backend per thread is how
 * it uses more than one core (two workers gave 2.0x on 2 cores). Workers stay up for the
 * pool's life because each load takes a second or more.
 *
 * Each `embedClips` call is split along its B*T frames into at most one chunk per worker
 * (the backbone sees every frame on its own, so any split gives the same numbers), so even
 * a caller with one call in flight keeps every worker busy. Chunks queue on the main
 * thread and go to whichever worker is idle. Frames travel as transferred ArrayBuffers
 * (moved, never structured-cloned); results come back the same way.
 *
 * The worker file is `dist/engines/tfjs/worker.js`: Node 20 cannot run a `.ts` worker, so when
 * this module runs from TypeScript source (vitest), it points at the build output, which
 * `npm test` builds first.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type * as tf from '@tensorflow/tfjs';
import { FramewiseError, ModelError } from '../../errors.js';
import { debug } from '../../log.js';
import { checkSignal, invalid, isPlainObject, positiveInteger } from '../../validate.js';
import type { BackboneInfo } from '../../embedding/backbone-spec.js';
import type { BackendRequest } from '../../tfjs/backend.js';
import { checkClipShape } from '../../embedding/frame-embedder.js';
import { reviveError, type SerializedError } from '../../thread-pool.js';
import { PROTOCOL, type FromWorker, type ToWorker, type WorkerInit } from './worker-protocol.js';

/** Options of {@link createWorkerPool}. */
export interface WorkerPoolOptions {
  /** What the backbone is: id, input size, dim, normalisation, spec. */
  info: BackboneInfo;
  /** The backbone, serialised (see `backboneArtifacts` in `fast.ts`). Sent to each worker once. */
  artifacts: tf.io.ModelArtifacts;
  /** @default 'layers' */
  format?: 'layers' | 'graph';
  /**
   * Backend each worker selects for itself; pass the one the main thread chose.
   * @default 'auto'
   */
  backend?: BackendRequest;
  /**
   * Number of workers; `'auto'` sizes the pool by cores (see {@link autoWorkers}).
   * @default 'auto'
   */
  workers?: 'auto' | number;
  /**
   * Most frames one worker runs through the backbone at once; bounds its activation memory.
   * Batching does not speed wasm up, and the wasm heap never shrinks, so this is kept small:
   * measured with 2 workers on MobileNetV2, the process peaks at ~0.5 GiB with 1 or 2,
   * ~0.7 GiB with 4, and ~1.2 GiB with 16.
   * @default 4
   */
  maxBatchFrames?: number;
  signal?: AbortSignal;
}

/** Options of one `embedClips` call. */
export interface EmbedClipsOptions {
  signal?: AbortSignal;
  /**
   * Move `data`'s buffer to the workers instead of copying it, when one chunk spans the
   * whole buffer: zero copies, but `data` is detached (empty) afterwards. Only for callers
   * that own the buffer and are done with it.
   * @default false
   */
  transfer?: boolean;
}

/**
 * How many inference workers to start by default.
 *
 * - `tensorflow` (tfjs-node): none. It is multi-threaded natively, and it loads in one
 *   thread of a process only: the second thread to load it fails (tensorflow/tfjs#8388),
 *   and the main thread has loaded it to choose the backend. So it runs in this thread.
 * - wasm and cpu run one core per worker. On 1-2 cores, one worker per core: decode
 *   (ffmpeg, sharp) interleaves with inference well enough that an idle core costs more
 *   than the contention (measured: `npm run bench:compare`). Above that, a quarter of the
 *   cores is left to ffmpeg and sharp.
 * - Never more than 8, nor more than a quarter of the memory at ~160 MiB per worker.
 *
 * Decode/inference balance (for the pipeline and ingest): at 16 frames per 10 s clip,
 * decoding is the larger share (ffmpeg decodes the whole span: ~0.9 CPU-s per 640x360 clip,
 * against ~0.65 CPU-s of folded MobileNetV2 on wasm), so inference workers and ffmpeg
 * processes both run on every core. Measured here: single-threaded ffmpeg decoders
 * (`-threads 1` before `-i`) spend ~12% less CPU than ffmpeg's automatic threading when
 * `concurrency` decodes already cover the cores; so threads = max(1, floor(cores /
 * concurrency)) is the suggested ffmpeg setting (it belongs in ingest's extract).
 */
export function autoWorkers(backend: string, cores = availableCores(), totalMem = os.totalmem()): number {
  if (backend === 'tensorflow') return 0;
  const byCores = cores <= 2 ? cores : cores - Math.ceil(cores / 4);
  const byMemory = Math.floor(totalMem / 4 / (160 * 2 ** 20));
  return Math.max(1, Math.min(byCores, 8, byMemory));
}

export function availableCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Where the compiled worker lives: next to this module in dist, or dist when run from src. */
export function workerScript(): URL {
  const beside = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL('../../../dist/engines/tfjs/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new ModelError(
    `the inference worker ${fileURLToPath(built)} is missing; run \`npm run build\` first`,
  );
}

interface Chunk {
  id: number;
  data: ArrayBuffer;
  byteOffset: number;
  frames: number;
  resolve: (out: Float32Array) => void;
  reject: (error: unknown) => void;
  /** Set when the caller gave up: the result is dropped when it arrives. */
  abandoned: boolean;
}

interface Slot {
  worker: Worker;
  busy?: Chunk;
  ready: boolean;
  /** Settles when this worker has loaded the backbone (or failed to). */
  loaded: Promise<{ name: string; reason: string }>;
}

/** A worker's error on this thread: framewise's own as it was (class and code), any other as a ModelError. */
function revive(error: SerializedError): Error {
  const revived = reviveError(error);
  return revived instanceof FramewiseError
    ? revived
    : new ModelError(`inference worker: ${error.message}`, { cause: revived });
}

/** What {@link spawnWorkerPool} needs: everything but the backbone. */
export type SpawnOptions = Pick<WorkerPoolOptions, 'backend' | 'maxBatchFrames'> & { workers: number };

/**
 * A resident pool of inference workers with the `FrameEmbedder` shape. It starts in two
 * steps, so that the workers' own start-up (importing tfjs, starting a backend: a second or
 * more each) overlaps the main thread loading the backbone: {@link spawnWorkerPool}, then
 * {@link WorkerPool.load}. {@link createWorkerPool} does both.
 */
export class WorkerPool {
  /** The engine, and why (the engine registry's reason, set by `createEmbedder`). */
  engine: { name: string; reason: string } = { name: 'tfjs', reason: 'a tfjs worker pool' };
  /** The tfjs backend, filled in once the workers are up. */
  backend: { name: string; reason: string } = { name: 'unknown', reason: 'starting' };
  readonly size: number;

  private info: BackboneInfo | undefined;
  private readonly slots: Slot[] = [];
  private readonly queue: Chunk[] = [];
  private nextId = 1;
  private failure: Error | undefined;
  private disposed = false;

  /** @internal Use {@link spawnWorkerPool} or {@link createWorkerPool}. */
  constructor(options: SpawnOptions) {
    this.size = options.workers;
    const script = workerScript();
    const init: WorkerInit = {
      protocol: PROTOCOL,
      backend: options.backend ?? 'auto',
      maxBatchFrames: options.maxBatchFrames ?? 4,
    };
    for (let i = 0; i < this.size; i += 1) {
      const worker = new Worker(script, { workerData: init, stdout: false, stderr: false });
      let resolveLoaded!: (backend: { name: string; reason: string }) => void;
      let rejectLoaded!: (error: unknown) => void;
      const loaded = new Promise<{ name: string; reason: string }>((resolve, reject) => {
        resolveLoaded = resolve;
        rejectLoaded = reject;
      });
      loaded.catch(() => undefined); // also reported through `failure`; never unhandled
      const slot: Slot = { worker, ready: false, loaded };
      this.slots.push(slot);
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          slot.ready = true;
          debug(
            'pool: worker %d ready in %d ms on %s',
            worker.threadId,
            Math.round(message.loadMs),
            message.backend.name,
          );
          resolveLoaded(message.backend);
          this.pump();
        } else if (message.type === 'fatal') {
          const error = revive(message.error);
          rejectLoaded(error);
          this.fail(error);
        } else {
          this.settle(slot, message);
        }
      });
      worker.on('error', (error) => {
        const failure = new ModelError(`inference worker crashed: ${error.message}`, { cause: error });
        rejectLoaded(failure);
        this.fail(failure);
      });
      worker.on('exit', (code) => {
        if (this.disposed) return;
        const error = new ModelError(`inference worker exited unexpectedly with code ${code}`);
        rejectLoaded(error);
        this.fail(error);
      });
    }
  }

  private requireInfo(): BackboneInfo {
    if (!this.info) throw new ModelError('the worker pool has no backbone yet; call load() first');
    return this.info;
  }

  /** What the backbone is (id, input size, dim, normalisation, spec). */
  get backbone(): BackboneInfo {
    return this.requireInfo();
  }
  get backboneId(): string {
    return this.requireInfo().id;
  }
  get inputSize(): number {
    return this.requireInfo().inputSize;
  }
  get dim(): number {
    return this.requireInfo().dim;
  }

  /** Number of live worker threads (0 after dispose). */
  get liveWorkers(): number {
    return this.slots.length;
  }

  /**
   * Sends the backbone to every worker (each builds its own copy, once); resolves when all
   * are ready. On failure or abort the pool is disposed.
   */
  async load(
    source: Pick<WorkerPoolOptions, 'info' | 'artifacts' | 'format'>,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const signal = checkSignal('options.signal', options.signal);
    if (this.info) throw new ModelError('the worker pool already has a backbone');
    if (this.disposed) throw new ModelError('the worker pool was disposed');
    this.info = source.info;
    const message: ToWorker = {
      type: 'load',
      info: source.info,
      artifacts: source.artifacts,
      format: source.format ?? 'layers',
    };
    for (const slot of this.slots) slot.worker.postMessage(message);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const backends = await Promise.race([Promise.all(this.slots.map((slot) => slot.loaded)), aborted]);
      this.backend = backends[0];
      this.idle();
    } catch (error) {
      await this.dispose();
      throw signal?.aborted ? signal.reason : error;
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * clips: uint8 RGB [B, T, S, S, 3] packed; returns float32 [B, T, D], the backbone's
   * features of every frame (TimeDistributed(backbone)).
   */
  async embedClips(
    data: Uint8Array,
    shape: [number, number, number, number, 3],
    options: EmbedClipsOptions = {},
  ): Promise<Float32Array> {
    const signal = checkSignal('options.signal', options.signal);
    const [B, T] = shape;
    const S = this.inputSize;
    checkClipShape(data, shape, S);
    const frameBytes = S * S * 3;
    const frames = B * T;
    if (this.disposed) throw new ModelError('the worker pool was disposed');
    if (this.failure) throw this.failure;
    if (!this.info) throw new ModelError('the worker pool has no backbone yet; call load() first');

    // One chunk per worker, whole frames each: [frames] -> chunks of ceil(frames / size).
    const per = Math.ceil(frames / Math.min(this.size, frames));
    const chunks: Chunk[] = [];
    const results: Array<Promise<Float32Array>> = [];
    for (let start = 0; start < frames; start += per) {
      const count = Math.min(per, frames - start);
      const whole = count === frames && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      let buffer: ArrayBuffer;
      let byteOffset = 0;
      if (options.transfer && whole && data.buffer instanceof ArrayBuffer) {
        buffer = data.buffer; // moved to the worker: zero copies
      } else {
        // One copy into a buffer of our own, which is then moved (not cloned) to the worker.
        buffer = data.slice(start * frameBytes, (start + count) * frameBytes).buffer;
        byteOffset = 0;
      }
      results.push(
        new Promise<Float32Array>((resolve, reject) => {
          chunks.push({
            id: this.nextId++,
            data: buffer,
            byteOffset,
            frames: count,
            resolve,
            reject,
            abandoned: false,
          });
        }),
      );
    }
    const onAbort = (): void => {
      for (const chunk of chunks) {
        chunk.abandoned = true;
        const queued = this.queue.indexOf(chunk);
        if (queued >= 0) this.queue.splice(queued, 1);
        chunk.reject(signal!.reason);
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      this.queue.push(...chunks);
      this.pump();
      const parts = await Promise.all(results);
      if (parts.length === 1) return parts[0]; // [B*T, D] is [B, T, D]
      const out = new Float32Array(frames * this.dim); // [B, T, D]
      let offset = 0;
      for (const part of parts) {
        out.set(part, offset);
        offset += part.length;
      }
      return out;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // A failed chunk may leave others of this call queued or running: never run or keep them.
      for (const chunk of chunks) {
        chunk.abandoned = true;
        const queued = this.queue.indexOf(chunk);
        if (queued >= 0) this.queue.splice(queued, 1);
      }
    }
  }

  /** Terminates every worker; pending and later calls reject. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const error = new ModelError('the worker pool was disposed');
    for (const chunk of this.queue.splice(0)) chunk.reject(error);
    for (const slot of this.slots) slot.busy?.reject(error);
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
    debug('pool: %d workers terminated', slots.length);
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) break;
      if (!slot.ready || slot.busy) continue;
      const chunk = this.queue.shift()!;
      slot.busy = chunk;
      slot.worker.ref();
      const message: ToWorker = {
        type: 'embed',
        id: chunk.id,
        frames: chunk.frames,
        data: chunk.data,
        byteOffset: chunk.byteOffset,
      };
      slot.worker.postMessage(message, [chunk.data]);
    }
  }

  private settle(slot: Slot, message: FromWorker): void {
    if (message.type !== 'result' && message.type !== 'error') return;
    const chunk = slot.busy;
    slot.busy = undefined;
    if (chunk && chunk.id === message.id && !chunk.abandoned) {
      if (message.type === 'result') chunk.resolve(new Float32Array(message.data));
      else chunk.reject(revive(message.error));
    }
    this.pump();
    this.idle();
  }

  /** Idle workers do not keep the process alive; busy ones do. */
  private idle(): void {
    for (const slot of this.slots) if (!slot.busy) slot.worker.unref();
  }

  private fail(error: Error): void {
    if (this.failure || this.disposed) return;
    this.failure = error;
    for (const chunk of this.queue.splice(0)) chunk.reject(error);
    for (const slot of this.slots) {
      slot.busy?.reject(error);
      slot.busy = undefined;
    }
  }
}

/**
 * Starts the worker threads of a pool without a backbone yet: each imports tfjs and starts
 * its backend while the caller loads the backbone, then {@link WorkerPool.load} hands it over.
 * Dispose it if the caller gives up before loading.
 */
export function spawnWorkerPool(options: {
  backend?: BackendRequest;
  workers?: 'auto' | number;
  maxBatchFrames?: number;
}): WorkerPool {
  if (!isPlainObject(options)) throw invalid('options', 'an object', options);
  if (options.maxBatchFrames !== undefined) positiveInteger('options.maxBatchFrames', options.maxBatchFrames);
  if (options.backend === 'tensorflow')
    throw new ModelError(
      'tfjs-node (`tensorflow`) runs in the main thread only: it cannot load in a worker thread (tensorflow/tfjs#8388); use workers: 0',
    );
  const requested = options.workers ?? 'auto';
  const workers =
    requested === 'auto'
      ? autoWorkers(options.backend ?? 'auto')
      : positiveInteger('options.workers', requested);
  return new WorkerPool({ backend: options.backend, maxBatchFrames: options.maxBatchFrames, workers });
}

/**
 * Starts a pool of inference workers, each loading the backbone once on its own backend,
 * and resolves when all are ready.
 */
export async function createWorkerPool(options: WorkerPoolOptions): Promise<WorkerPool> {
  if (!isPlainObject(options)) throw invalid('options', 'an object', options);
  const signal = checkSignal('options.signal', options.signal);
  if (!isPlainObject(options.artifacts) || !options.artifacts.modelTopology)
    throw invalid('options.artifacts', 'tfjs model artifacts', options.artifacts);
  if (!isPlainObject(options.info)) throw invalid('options.info', 'a backbone record', options.info);
  positiveInteger('options.info.inputSize', options.info.inputSize);
  positiveInteger('options.info.dim', options.info.dim);
  const pool = spawnWorkerPool(options);
  await pool.load(options, { signal });
  debug('pool: %d workers on %s', pool.size, pool.backend.name);
  return pool;
}
