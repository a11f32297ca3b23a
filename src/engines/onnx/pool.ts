/**
 * The onnx engine off the main thread: one worker thread owns the ONNX Runtime session
 * (worker.ts), and this `FrameEmbedder` sends it the frames.
 *
 * Why: onnxruntime-node runs `session.run` on the calling thread, synchronously (about 5 ms
 * a frame for MobileNetV2 at 224 on 2 intra-op threads). On the main thread every run holds
 * the event loop, and whatever waits on it (the decode workers' results, the batcher, the
 * writer) waits too. In a worker the main thread only orchestrates.
 *
 * The worker is the one thread pool (thread-pool.ts) with one worker: one session, whose
 * intra-op threads already use the cores (docs/performance.md), so calls run one after
 * another, in the order they came, and results come back in that order. Frames are moved to
 * the worker (a copy first unless the caller gives its buffer with `transfer`), embeddings
 * are moved back. Memory stays bounded by the caller's calls in flight (the runner keeps two).
 * Abort rejects at once; the worker stops between `session.run`s. Dispose lets a running
 * run end, releases the session and lets the thread end by itself: it is never terminated
 * inside a native call.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ModelError } from '../../errors.js';
import type { BackboneInfo } from '../../embedding/backbone-spec.js';
import { checkClipShape, type FrameEmbedder } from '../../embedding/frame-embedder.js';
import { ThreadPool } from '../../thread-pool.js';
import { checkSignal } from '../../validate.js';
import type { ThreadPlan } from './runtime.js';
import type { OnnxSource } from './session.js';

/** Bumped whenever these messages change: tests run this file from source and the worker from dist. */
export const ONNX_WORKER_PROTOCOL = 1;

/** `workerData` of the ONNX worker. */
export interface OnnxWorkerData {
  protocol: number;
  source: OnnxSource;
  threads: ThreadPlan;
}

/** main -> worker: what the session is, or `frames` uint8 frames [frames, S, S, 3] in the moved `data`. */
export type OnnxTask =
  | { type: 'describe' }
  | { type: 'embed'; data: ArrayBuffer; byteOffset: number; byteLength: number; frames: number };

/** worker -> main: float32 [frames, D] in the moved `data`. */
export type OnnxResult =
  | { type: 'described'; info: BackboneInfo; what: string }
  | { type: 'embedded'; data: ArrayBuffer };

/** Where the compiled worker lives: beside this module in dist, or dist when run from src. */
function workerScript(): URL {
  const beside = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL('../../../dist/engines/onnx/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new ModelError(`the ONNX worker ${fileURLToPath(built)} is missing; run \`npm run build\` first`);
}

class OnnxWorkerEmbedder implements FrameEmbedder {
  readonly backboneId: string;
  readonly inputSize: number;
  readonly dim: number;

  constructor(
    private readonly pool: ThreadPool<OnnxTask, OnnxResult>,
    readonly backbone: BackboneInfo,
    readonly engine: { name: string; reason: string },
  ) {
    this.backboneId = backbone.id;
    this.inputSize = backbone.inputSize;
    this.dim = backbone.dim;
  }

  async embedClips(
    data: Uint8Array,
    shape: [number, number, number, number, 3],
    options: { signal?: AbortSignal; transfer?: boolean } = {},
  ): Promise<Float32Array> {
    const signal = checkSignal('options.signal', options.signal);
    checkClipShape(data, shape, this.inputSize);
    signal?.throwIfAborted();
    // The caller's own buffer is moved (zero copies) only when it gave it; otherwise one copy, moved.
    const own =
      options.transfer &&
      data.buffer instanceof ArrayBuffer &&
      data.byteOffset === 0 &&
      data.byteLength === data.buffer.byteLength;
    const view = own ? data : data.slice();
    const buffer = view.buffer as ArrayBuffer;
    const frames = shape[0] * shape[1];
    const task: OnnxTask = {
      type: 'embed',
      data: buffer,
      byteOffset: view.byteOffset,
      byteLength: view.byteLength,
      frames,
    };
    const result = await this.pool.run(task, { transfer: [buffer], signal });
    if (result.type !== 'embedded') throw new ModelError('the ONNX worker answered out of turn');
    return new Float32Array(result.data); // [B*T, D] = [B, T, D]
  }

  async dispose(): Promise<void> {
    await this.pool.close();
  }
}

/**
 * Starts the ONNX worker on `source` and resolves once its session is open, with the
 * backbone it found and the words for the reason (`what`). On failure the worker is closed
 * and the error is the worker's (`ModelError` for a model that does not load).
 */
export async function createOnnxWorker(
  source: OnnxSource,
  threads: ThreadPlan,
  reason: (what: string) => string,
  signal?: AbortSignal,
): Promise<FrameEmbedder> {
  // The source's bytes are cloned into the worker (`workerData`), and kept here for a worker that must start again.
  const pool = new ThreadPool<OnnxTask, OnnxResult>({
    name: 'onnx',
    script: workerScript(),
    size: 1,
    workerData: { protocol: ONNX_WORKER_PROTOCOL, source, threads } satisfies OnnxWorkerData,
    died: (why) => new ModelError(`ONNX Runtime: ${why}`),
  });
  try {
    const described = await pool.run({ type: 'describe' }, { signal });
    if (described.type !== 'described') throw new ModelError('the ONNX worker answered out of turn');
    return new OnnxWorkerEmbedder(pool, described.info, { name: 'onnx', reason: reason(described.what) });
  } catch (error) {
    await pool.close();
    throw error;
  }
}
