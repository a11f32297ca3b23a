/**
 * `FrameEmbedder`: uint8 RGB clips [B, T, S, S, 3] in, frame embeddings [B, T, D] out, by
 * TimeDistributed(backbone). This file holds the in-process implementation; the per-worker
 * work is the one function `embedClipsLocal`, so a worker pool can run it elsewhere.
 */
import { tf } from '../../tfjs/tf.js';
import { ModelError } from '../../errors.js';
import { debug } from '../../log.js';
import {
  boolean,
  checkSignal,
  invalid,
  isPlainObject,
  nonEmptyString,
  nonNegativeInteger,
  positiveInteger,
} from '../../validate.js';
import { useBackend, type BackendInfo, type BackendRequest } from '../../tfjs/backend.js';
import { backboneInfo, loadBackbone, normalizeFrames, type LoadedBackbone } from '../../tfjs/registry.js';
import { parseBackboneSpec, type BackboneInfo, type BackboneSpec } from '../../embedding/backbone-spec.js';
import { backboneArtifacts, backboneFromArtifacts } from './fast.js';
import { autoWorkers, spawnWorkerPool } from './pool.js';
import { TimeDistributed } from '../../tfjs/time-distributed.js';
import { checkClipShape, type FrameEmbedder } from '../../embedding/frame-embedder.js';

export type { FrameEmbedder };

export interface EmbedderOptions {
  /** A registry name or a custom tfjs model (an ONNX spec is rejected). @default 'mobilenet_v2' */
  backbone?: BackboneSpec;
  /** @default 'auto' (tfjs-node, then wasm, then cpu) */
  backend?: BackendRequest;
  /** Backbone cache folder. @default `FRAMEWISE_CACHE` or `~/.cache/framewise` */
  cacheDir?: string;
  /**
   * Inference worker threads, each with its own backend and its own copy of the backbone
   * (`pool.ts`); `0` runs in this thread. `'auto'` sizes the pool by cores and backend
   * (`autoWorkers`: one per core up to 2 cores, leaving a quarter for ffmpeg above that;
   * one for tfjs-node, which is multi-threaded itself).
   * @default 'auto'
   */
  workers?: number | 'auto';
  /**
   * Fold BatchNormalization into the convolutions at load (`src/tfjs/fold.ts`): the same features
   * within 1e-4, 1.4-2x faster on wasm. The folded model is cached beside the backbone.
   * @default true
   */
  fold?: boolean;
  /**
   * Most frames through the backbone at once; bounds activation memory.
   * @default 32 in-process; 4 per worker (see `WorkerPoolOptions.maxBatchFrames`)
   */
  maxBatchFrames?: number;
  signal?: AbortSignal;
  /** Put before `backend.reason`: how the engine was chosen (the engine registry sets it). @default none */
  reasonPrefix?: string;
}

/** What `embedClipsLocal` runs: a backbone and its TimeDistributed wrapper (LayersModel backbones). */
export interface LocalEmbedModel {
  backbone: LoadedBackbone;
  /** TimeDistributed(backbone) for LayersModel backbones; GraphModels are reshaped by hand. */
  td?: TimeDistributed;
  maxBatchFrames: number;
}

/** Wraps a loaded backbone for `embedClipsLocal`. */
export function prepareLocalModel(
  backbone: LoadedBackbone,
  options: { maxBatchFrames?: number } = {},
): LocalEmbedModel {
  const td = backbone.layersModel ? new TimeDistributed({ layer: backbone.layersModel }) : undefined;
  return { backbone, td, maxBatchFrames: options.maxBatchFrames ?? 32 };
}

/**
 * The per-worker work: clips [B, T, S, S, 3] uint8 -> embeddings [B, T, D] float32, a few
 * clips at a time so at most `maxBatchFrames` frames (or one clip) pass the backbone at once.
 */
export async function embedClipsLocal(
  model: LocalEmbedModel,
  data: Uint8Array,
  shape: readonly [number, number, number, number, 3] | readonly number[],
  options: { signal?: AbortSignal } = {},
): Promise<Float32Array> {
  const [batch, time, height, width] = shape;
  const { backbone, td } = model;
  const dim = backbone.dim;
  const frameSize = height * width * 3;
  const out = new Float32Array(batch * time * dim);
  const clipsPerStep = Math.max(1, Math.floor(model.maxBatchFrames / time));
  for (let first = 0; first < batch; first += clipsPerStep) {
    options.signal?.throwIfAborted();
    const count = Math.min(clipsPerStep, batch - first);
    const bytes = data.subarray(first * time * frameSize, (first + count) * time * frameSize);
    const y = tf.tidy(() => {
      const x = tf.tensor(new Float32Array(bytes), [count, time, height, width, 3], 'float32'); // [b, T, S, S, 3]
      const normalised = normalizeFrames(x, backbone.normalize);
      if (td) return td.apply(normalised) as tf.Tensor; // [b, T, D]
      // GraphModels cannot sit in a layer: the same reshape by hand.
      const flat = tf.reshape(normalised, [count * time, height, width, 3]) as tf.Tensor4D; // [b*T, S, S, 3]
      return tf.reshape(backbone.embed(flat), [count, time, dim]); // [b, T, D]
    });
    try {
      out.set(await y.data<'float32'>(), first * time * dim);
    } finally {
      y.dispose();
    }
  }
  return out;
}

function validateOptions(options: EmbedderOptions): void {
  if (!isPlainObject(options)) throw invalid('options', 'an options object', options);
  parseBackboneSpec('backbone', options.backbone);
  if (options.cacheDir !== undefined) nonEmptyString('cacheDir', options.cacheDir);
  if (options.workers !== undefined && options.workers !== 'auto')
    nonNegativeInteger('workers', options.workers);
  if (options.fold !== undefined) boolean('fold', options.fold);
  if (options.maxBatchFrames !== undefined) positiveInteger('maxBatchFrames', options.maxBatchFrames);
}

class LocalFrameEmbedder implements FrameEmbedder {
  readonly backboneId: string;
  readonly inputSize: number;
  readonly dim: number;
  readonly backbone: BackboneInfo;
  private model: LocalEmbedModel | undefined;
  /** Calls run one after another: tfjs work on one backend does not overlap anyway. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    model: LocalEmbedModel,
    readonly engine: { name: string; reason: string },
    readonly backend: BackendInfo,
  ) {
    this.model = model;
    this.backbone = backboneInfo(model.backbone);
    this.backboneId = model.backbone.id;
    this.inputSize = model.backbone.inputSize;
    this.dim = model.backbone.dim;
  }

  async embedClips(
    data: Uint8Array,
    shape: [number, number, number, number, 3],
    options: { signal?: AbortSignal } = {},
  ): Promise<Float32Array> {
    const signal = checkSignal('options.signal', options.signal);
    checkClipShape(data, shape, this.inputSize);
    const run = this.queue.then(() => {
      if (!this.model) throw new ModelError('this FrameEmbedder has been disposed');
      return embedClipsLocal(this.model, data, shape, { signal });
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async dispose(): Promise<void> {
    await this.queue;
    this.model?.backbone.dispose();
    this.model = undefined;
  }
}

/**
 * Loads the backbone (from the disk cache when possible) on the chosen backend and returns an
 * embedder for uint8 clips.
 */
export async function createEmbedder(options: EmbedderOptions = {}): Promise<FrameEmbedder> {
  validateOptions(options);
  const signal = checkSignal('signal', options.signal);
  // Checked where the run's options were resolved (a name this does not know fails in the lookup).
  const selected = await useBackend(options.backend ?? 'auto');
  // Each load step holds the event loop for a while: one that a Ctrl-C came during is the last.
  signal?.throwIfAborted();
  const engine = { name: 'tfjs', reason: options.reasonPrefix ?? 'createEmbedder() runs tfjs' };
  const backend: BackendInfo = options.reasonPrefix
    ? { name: selected.name, reason: `${options.reasonPrefix}; ${selected.reason}` }
    : selected;
  // The fast path (src/tfjs/fold.ts, fast.ts, pool.ts): BatchNormalization folded into the convs and
  // cached, run by resident workers with one backend each. Same features within 1e-4. The
  // workers start first, so their start-up overlaps loading the backbone here.
  const requested = options.workers ?? 'auto';
  // tfjs-node loads in one thread only (autoWorkers): it runs here whatever was asked.
  const workers =
    backend.name === 'tensorflow' ? 0 : requested === 'auto' ? autoWorkers(backend.name) : requested;
  const pool =
    workers > 0
      ? spawnWorkerPool({ backend: backend.name, workers, maxBatchFrames: options.maxBatchFrames })
      : undefined;
  let backbone: LoadedBackbone | undefined;
  let keepBackbone = false;
  try {
    const t0 = Date.now();
    // On the backend made current above.
    backbone = await loadBackbone(options.backbone ?? 'mobilenet_v2', { cacheDir: options.cacheDir, signal });
    debug(
      'embedder: %s on %s in %d ms (%s)',
      backbone.id,
      backend.name,
      Date.now() - t0,
      backbone.fromCache ? 'cached' : 'cold',
    );
    signal?.throwIfAborted();
    const source = await backboneArtifacts(backbone, {
      fold: options.fold ?? true,
      cacheDir: options.cacheDir,
      signal,
    });
    signal?.throwIfAborted();
    if (pool) {
      await pool.load(
        { info: backboneInfo(backbone), artifacts: source.artifacts, format: source.format },
        { signal },
      );
      pool.engine = engine;
      pool.backend = {
        name: backend.name,
        reason: `${backend.reason}; ${workers} worker thread${workers === 1 ? '' : 's'}${source.folded ? ', BatchNorm folded' : ''}`,
      };
      return pool;
    }
    const local = source.folded ? await backboneFromArtifacts(backboneInfo(backbone), source) : backbone;
    keepBackbone = local === backbone;
    return new LocalFrameEmbedder(
      prepareLocalModel(local, { maxBatchFrames: options.maxBatchFrames }),
      engine,
      backend,
    );
  } catch (error) {
    await pool?.dispose();
    throw error;
  } finally {
    // The workers (or the folded copy) hold what runs; the main thread needs no backbone.
    if (!keepBackbone) backbone?.dispose();
  }
}
