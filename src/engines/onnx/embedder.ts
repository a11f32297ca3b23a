/**
 * The ONNX Runtime engine: a `FrameEmbedder` over one InferenceSession. The graph takes the
 * uint8 frames as they are packed (NHWC, normalisation inside), so a clip batch
 * [B, T, S, S, 3] goes in as [B*T, S, S, 3] without a copy, and [B*T, D] comes back as
 * [B, T, D].
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
import { describeThreads, loadOrt, ortVersion, sessionOptions, threadPlan } from './runtime.js';
import { onnxModelFor } from './model.js';
import { openUserModel, type SessionPlan } from './user-model.js';

export interface OnnxEmbedderOptions {
  /** A registry name, a custom tfjs LayersModel (converted), or an `.onnx` model (as it is). @default 'mobilenet_v2' */
  backbone?: BackboneSpec;
  /** Where converted models are cached. @default $FRAMEWISE_CACHE or ~/.cache/framewise */
  cacheDir?: string;
  /** ONNX Runtime intra-op threads. @default `FRAMEWISE_ONNX_THREADS`, else by cores (every core up to 2, then three quarters) */
  intraOpThreads?: number;
  /**
   * Most frames through the session at once. A run holds the main thread (see
   * `autoRunFrames`), and this bounds activation memory (MobileNetV2 at 224 needs about
   * 2.5 MB a frame at its widest layer).
   * @default `FRAMEWISE_ONNX_RUN_FRAMES`, else 1 up to 2 intra-op threads, 4 above
   */
  maxBatchFrames?: number;
  /** Words put before the reason (e.g. how the engine was chosen). */
  reasonPrefix?: string;
  /** Told when the backbone must first be converted (seconds). */
  onPrepare?: (message: string) => void;
  signal?: AbortSignal;
}

class OnnxEmbedder implements FrameEmbedder {
  readonly backboneId: string;
  readonly inputSize: number;
  readonly dim: number;
  private session: import('onnxruntime-node').InferenceSession | undefined;
  /** Runs go one after another: the session's intra-op threads already use the cores. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    session: import('onnxruntime-node').InferenceSession,
    private readonly plan: SessionPlan,
    readonly backbone: BackboneInfo,
    readonly backend: { name: string; reason: string },
    private readonly maxBatchFrames: number,
  ) {
    this.session = session;
    this.backboneId = backbone.id;
    this.inputSize = backbone.inputSize;
    this.dim = backbone.dim;
  }

  async embedClips(
    data: Uint8Array,
    shape: [number, number, number, number, 3],
    options: { signal?: AbortSignal } = {},
  ): Promise<Float32Array> {
    const signal = checkSignal('options.signal', options.signal);
    checkClipShape(data, shape, this.inputSize);
    signal?.throwIfAborted();
    const run = this.queue.then(() => this.run(data, shape, signal));
    this.queue = run.catch(() => undefined);
    return raceAbort(run, signal);
  }

  private async run(
    data: Uint8Array,
    shape: readonly number[],
    signal: AbortSignal | undefined,
  ): Promise<Float32Array> {
    const [batch, time, S] = shape;
    const D = this.dim;
    const frames = batch * time;
    const frameSize = S * S * 3;
    const out = new Float32Array(frames * D); // [B, T, D] = [B*T, D]
    for (let first = 0; first < frames; first += this.maxBatchFrames) {
      signal?.throwIfAborted();
      if (!this.session) throw new ModelError('this FrameEmbedder has been disposed');
      const count = Math.min(this.maxBatchFrames, frames - first);
      const input = this.plan.input(data.subarray(first * frameSize, (first + count) * frameSize), count); // [count, S, S, 3] as the model takes it
      const result = await this.session.run({ [this.plan.inputName]: input }, [this.plan.outputName]);
      try {
        const y = this.plan.read(result[this.plan.outputName], count); // [count, D]
        if (y.length !== count * D)
          throw new ModelError(
            `the ONNX backbone gave ${y.length} values for ${count} frames, expected ${count} x ${D}`,
          );
        out.set(y, first * D);
      } finally {
        for (const t of Object.values(result)) t.dispose();
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.queue;
    const session = this.session;
    this.session = undefined;
    await session?.release();
  }
}

function validateOptions(options: OnnxEmbedderOptions): void {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  parseBackboneSpec('backbone', options.backbone);
  if (options.cacheDir !== undefined) nonEmptyString('cacheDir', options.cacheDir);
  if (options.intraOpThreads !== undefined) positiveInteger('intraOpThreads', options.intraOpThreads);
  if (options.maxBatchFrames !== undefined) positiveInteger('maxBatchFrames', options.maxBatchFrames);
}

/**
 * Loads ONNX Runtime, the backbone's ONNX model (cached, or converted now) and a session.
 * Rejects with `OnnxUnavailableError` when the runtime does not load, and with `ModelError`
 * when the backbone does not convert.
 */
export async function createOnnxEmbedder(options: OnnxEmbedderOptions = {}): Promise<FrameEmbedder> {
  validateOptions(options);
  const signal = checkSignal('signal', options.signal);
  signal?.throwIfAborted();
  const spec = parseBackboneSpec('backbone', options.backbone);
  const t0 = Date.now();
  const ort = await loadOrt();
  const threads = threadPlan({ intraOpThreads: options.intraOpThreads, runFrames: options.maxBatchFrames });
  const threadWords = describeThreads(threads);
  const finish = (
    session: import('onnxruntime-node').InferenceSession,
    plan: SessionPlan,
    info: BackboneInfo,
    what: string,
  ): FrameEmbedder => {
    const why = [`onnxruntime-node ${ortVersion(ort)}`, what, threadWords].join('; ');
    debug('onnx: %s ready in %d ms', info.id, Date.now() - t0);
    const reason = options.reasonPrefix ? `${options.reasonPrefix}: ${why}` : why;
    return new OnnxEmbedder(session, plan, info, { name: 'onnx', reason }, threads.runFrames);
  };
  if (isOnnxBackbone(spec)) {
    const { session, plan, info } = await openUserModel(ort, spec, sessionOptions(threads), signal);
    return finish(session, plan, info, `${info.name} as given (${plan.describe})`);
  }
  const model = await onnxModelFor(ort, spec, {
    cacheDir: options.cacheDir,
    onPrepare: options.onPrepare,
    signal,
  });
  signal?.throwIfAborted();
  const session = await ort.InferenceSession.create(model.bytes, sessionOptions(threads));
  try {
    signal?.throwIfAborted();
    const D = model.info.dim;
    const plan: SessionPlan = {
      inputName: session.inputNames[0],
      outputName: session.outputNames[0],
      // A view, not a copy: the graph takes uint8 [n, S, S, 3] and normalises inside.
      input: (frames, n) =>
        new ort.Tensor('uint8', frames, [n, model.info.inputSize, model.info.inputSize, 3]),
      read: (y, n) => {
        if (y.dims.length !== 2 || y.dims[0] !== n || y.dims[1] !== D)
          throw new ModelError(
            `the ONNX backbone gave [${y.dims.join(', ')}] for ${n} frames, expected [${n}, ${D}]`,
          );
        return y.data as Float32Array;
      },
      describe: 'converted',
    };
    const what =
      `${model.info.name} ${model.source === 'cached' ? 'converted model from the cache' : 'converted now'}` +
      (model.maxAbsDiff !== undefined ? ` (max |onnx - tfjs| ${model.maxAbsDiff.toExponential(1)})` : '');
    return finish(session, plan, model.info, what);
  } catch (error) {
    await session.release();
    throw error;
  }
}
