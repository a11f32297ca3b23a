/**
 * The ONNX Runtime engine: a `FrameEmbedder` over one InferenceSession. The graph takes the
 * uint8 frames as they are packed (NHWC, normalisation inside), so a clip batch
 * [B, T, S, S, 3] goes in as [B*T, S, S, 3] without a copy, and [B*T, D] comes back as
 * [B, T, D].
 *
 * The session runs in a worker thread by default (pool.ts), so that its synchronous runs
 * never hold the main thread; `worker: false` or `FRAMEWISE_ONNX_WORKER=0` runs it here.
 * Both run the same code (session.ts).
 */
import { ModelError } from '../../errors.js';
import { debug } from '../../log.js';
import {
  checkSignal,
  invalid,
  isPlainObject,
  nonEmptyString,
  positiveInteger,
  raceAbort,
} from '../../validate.js';
import {
  isOnnxBackbone,
  parseBackboneSpec,
  type BackboneInfo,
  type BackboneSpec,
} from '../../embedding/backbone-spec.js';
import { checkClipShape, type FrameEmbedder } from '../../embedding/frame-embedder.js';
import { describeThreads, loadOrt, ortVersion, threadPlan } from './runtime.js';
import { onnxModelFor } from './model.js';
import { createOnnxWorker } from './pool.js';
import { openSession, runSession, type OnnxSource, type OpenSession } from './session.js';

export interface OnnxEmbedderOptions {
  /** A registry name, a custom tfjs LayersModel (converted), or an `.onnx` model (as it is). @default 'mobilenet_v2' */
  backbone?: BackboneSpec;
  /** Where converted models are cached. @default $FRAMEWISE_CACHE or ~/.cache/framewise */
  cacheDir?: string;
  /** ONNX Runtime intra-op threads. @default `FRAMEWISE_ONNX_THREADS`, else by cores (every core up to 2, then three quarters) */
  intraOpThreads?: number;
  /**
   * Whether the session runs in a worker thread, so that its runs never hold the main
   * thread's event loop (pool.ts). `false` runs it on this thread, as before.
   * @default `FRAMEWISE_ONNX_WORKER` (`0` or `1`), else true
   */
  worker?: boolean;
  /**
   * Most frames through the session at once (see `autoRunFrames`); this bounds activation
   * memory (MobileNetV2 at 224 needs about 2.5 MB a frame at its widest layer).
   * @default `FRAMEWISE_ONNX_RUN_FRAMES`, else 1 up to 2 intra-op threads, 4 above
   */
  maxBatchFrames?: number;
  /** Words put before the reason (e.g. how the engine was chosen). */
  reasonPrefix?: string;
  /** Told when the backbone must first be converted (seconds). */
  onPrepare?: (message: string) => void;
  signal?: AbortSignal;
}

/** The session on this thread (`worker: false`): each run holds the event loop while it runs. */
class OnnxEmbedder implements FrameEmbedder {
  readonly backboneId: string;
  readonly inputSize: number;
  readonly dim: number;
  readonly backbone: BackboneInfo;
  private open: OpenSession | undefined;
  /** Runs go one after another: the session's intra-op threads already use the cores. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    open: OpenSession,
    readonly engine: { name: string; reason: string },
    private readonly runFrames: number,
  ) {
    this.open = open;
    this.backbone = open.info;
    this.backboneId = open.info.id;
    this.inputSize = open.info.inputSize;
    this.dim = open.info.dim;
  }

  async embedClips(
    data: Uint8Array,
    shape: [number, number, number, number, 3],
    options: { signal?: AbortSignal } = {},
  ): Promise<Float32Array> {
    const signal = checkSignal('options.signal', options.signal);
    checkClipShape(data, shape, this.inputSize);
    signal?.throwIfAborted();
    const run = this.queue.then(() => {
      if (!this.open) throw new ModelError('this FrameEmbedder has been disposed');
      return runSession(this.open, data, shape[0] * shape[1], this.runFrames, signal);
    });
    this.queue = run.catch(() => undefined);
    return raceAbort(run, signal);
  }

  async dispose(): Promise<void> {
    await this.queue;
    const open = this.open;
    this.open = undefined;
    await open?.session.release();
  }
}

function validateOptions(options: OnnxEmbedderOptions): void {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  parseBackboneSpec('backbone', options.backbone);
  if (options.cacheDir !== undefined) nonEmptyString('cacheDir', options.cacheDir);
  if (options.intraOpThreads !== undefined) positiveInteger('intraOpThreads', options.intraOpThreads);
  if (options.maxBatchFrames !== undefined) positiveInteger('maxBatchFrames', options.maxBatchFrames);
  if (options.worker !== undefined && typeof options.worker !== 'boolean')
    throw invalid('worker', 'a boolean', options.worker);
}

/**
 * Whether the session runs in a worker thread: the option, else `FRAMEWISE_ONNX_WORKER`
 * (`0` runs it on this thread, as before issue 33), else yes.
 */
export function onnxInWorker(given?: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (given !== undefined) return given;
  const text = env.FRAMEWISE_ONNX_WORKER?.trim() || '1';
  if (text !== '0' && text !== '1') throw invalid('FRAMEWISE_ONNX_WORKER', "'0' or '1'", text);
  return text === '1';
}

/**
 * Loads ONNX Runtime, the backbone's ONNX model (cached, or converted now) and a session,
 * in the ONNX worker (see pool.ts) or on this thread (`worker: false`). Rejects with
 * `OnnxUnavailableError` when the runtime does not load, and with `ModelError` when the
 * backbone does not convert or load.
 */
export async function createOnnxEmbedder(options: OnnxEmbedderOptions = {}): Promise<FrameEmbedder> {
  validateOptions(options);
  const signal = checkSignal('signal', options.signal);
  signal?.throwIfAborted();
  const inWorker = onnxInWorker(options.worker);
  const spec = parseBackboneSpec('backbone', options.backbone);
  const t0 = Date.now();
  // Loaded here too: `auto` falls back on its failure, and a conversion checks its graph with it.
  const ort = await loadOrt();
  const threads = threadPlan({ intraOpThreads: options.intraOpThreads, runFrames: options.maxBatchFrames });
  const where = inWorker ? 'in a worker thread' : 'on the main thread';
  const reason = (what: string): string => {
    const why = [`onnxruntime-node ${ortVersion(ort)}`, what, describeThreads(threads), where].join('; ');
    return options.reasonPrefix ? `${options.reasonPrefix}: ${why}` : why;
  };
  let source: OnnxSource;
  if (isOnnxBackbone(spec)) {
    source = { kind: 'user', spec };
  } else {
    const model = await onnxModelFor(ort, spec, {
      cacheDir: options.cacheDir,
      onPrepare: options.onPrepare,
      signal,
    });
    const what =
      `${model.info.name} ${model.source === 'cached' ? 'converted model from the cache' : 'converted now'}` +
      (model.maxAbsDiff !== undefined ? ` (max |onnx - tfjs| ${model.maxAbsDiff.toExponential(1)})` : '');
    source = { kind: 'converted', bytes: model.bytes, info: model.info, what };
  }
  signal?.throwIfAborted();
  if (inWorker) {
    const embedder = await createOnnxWorker(source, threads, reason, signal);
    debug('onnx: %s ready in a worker in %d ms', embedder.backboneId, Date.now() - t0);
    return embedder;
  }
  const open = await openSession(ort, source, threads, signal);
  try {
    signal?.throwIfAborted();
  } catch (error) {
    await open.session.release();
    throw error;
  }
  debug('onnx: %s ready in %d ms', open.info.id, Date.now() - t0);
  return new OnnxEmbedder(open, { name: 'onnx', reason: reason(open.what) }, threads.runFrames);
}
