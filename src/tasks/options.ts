/**
 * Options shared by every runner, validated at the boundary before any process is spawned
 * or any tensor allocated.
 */
import { availableParallelism } from 'node:os';
import { parseSampling, validateSampling } from '../ingest/sampling.js';
import type { Sampling } from '../ingest/types.js';
import type { SeekMode } from '../ingest/decode-plan.js';
import { DECODER_REQUESTS, type DecoderRequest } from '../ingest/decoders.js';
import { parseBackboneSpec, validateNormalization, type BackboneSpec, type Normalization } from '../embedding/backbone-spec.js';
import { defaultCacheDir } from '../fs.js';
import { checkQueueName, checkRedisUrl, DEFAULT_QUEUE, DEFAULT_REDIS_TIMEOUT_MS } from '../runners/protocol.js';
import type { RemoteSettings } from '../runners/remote-runner.js';
import { conflict, invalid, isPlainObject, LIMITS, nonNegativeInteger, oneOf, positiveInteger } from '../validate.js';

/** Options of `createPipeline()`. */
export interface PipelineOptions {
  /**
   * The backbone: a registered name (`mobilenet_v2`, `inception_v3`); an `.onnx` model path
   * or URL (onnx engine; size and layout read from the model); a tfjs `model.json` path or URL
   * (with `size` and `normalize`); or a spec object (`{ path | url, inputSize, normalize,
   * embeddingLayer? }` for tfjs, `{ path | url, inputSize?, normalize?, output? }` for .onnx).
   * @default 'mobilenet_v2'
   */
  backbone?: BackboneSpec;
  /**
   * How frames are normalised for a backbone given as a path or URL string.
   * @default 'imagenet' for an .onnx model; required for a tfjs model
   */
  normalize?: Normalization;
  /**
   * Frames per clip, T.
   * @default 16
   */
  frames?: number;
  /**
   * Frame side in pixels; must match the backbone's input size.
   * @default the backbone's input size (224 for mobilenet_v2)
   */
  size?: number;
  /**
   * How frames are fitted to the square: `cover` crops the centre, `contain` pads.
   * @default 'cover'
   */
  fit?: 'cover' | 'contain';
  /**
   * Which clips and frames to take: an object, or `uniform`, `fps:<n>`, `window:<len>/<stride>`.
   * @default 'uniform' (one clip of `frames` frames over the whole video)
   */
  sampling?: Sampling | string;
  /**
   * The engine that runs the backbone: `onnx` (onnxruntime-node), `tfjs`, or `auto`: onnx
   * when onnxruntime-node loads and the backbone converts, else tfjs. Heads stay on tfjs.
   * @default 'auto'
   */
  engine?: 'auto' | 'onnx' | 'tfjs';
  /**
   * The tfjs backend (for the heads, and for the backbone when tfjs runs it).
   * @default 'auto' (tfjs-node, then wasm, then cpu)
   */
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  /**
   * ffmpeg decodes running at once.
   * @default 2
   */
  concurrency?: number;
  /**
   * Decoding threads per decode; 0 lets the decoder choose: ffmpeg's choice (one per core)
   * for `cli`, where it beat one thread per decode by about 1.1x end to end on 2 cores
   * (`npm run bench:compare`), and 1 for `libav`, whose decodes run side by side
   * (`npm run bench:decode`).
   * @default 0
   */
  threads?: number;
  /**
   * Who decodes: `libav` (FFmpeg's libraries in-process, through the optional dependency
   * node-av; decodes only the packets the frames need), `cli` (an ffmpeg process per video),
   * or `auto`: libav when node-av loads, else cli.
   * @default 'auto'
   */
  decoder?: DecoderRequest;
  /**
   * `exact`: the frame on display at each planned timestamp. `keyframe`: the nearest
   * keyframe, decoding keyframes only (for long videos; records give the real timestamps).
   * @default 'exact'
   */
  seek?: SeekMode;
  /**
   * Clips per backbone call.
   * @default 4
   */
  batch?: number;
  /**
   * Backbone worker threads; 0 runs the backbone in this thread.
   * @default automatic (by cores and backend)
   */
  workers?: number;
  /**
   * The embedding cache folder, or `false` to turn it off.
   * @default process.env.FRAMEWISE_CACHE or ~/.cache/framewise
   */
  cache?: string | false;
  /**
   * Per-video decode timeout in milliseconds.
   * @default 60000 plus 2000 per second of video
   */
  timeoutMs?: number;
  /**
   * Run across machines: jobs go to a BullMQ queue on this Redis, and `framewise worker`s on
   * any number of machines run them (they must reach the same paths, or URLs). The results are
   * those of a local run, in the same order.
   * @default none: the run is local
   */
  remote?: RemoteSettings;
  /** Aborts loading the backbone. */
  signal?: AbortSignal;
}

export interface ResolvedOptions {
  backbone: BackboneSpec;
  frames: number;
  size: number | undefined;
  fit: 'cover' | 'contain';
  sampling: Sampling;
  engine: 'auto' | 'onnx' | 'tfjs';
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  concurrency: number;
  threads: number;
  decoder: DecoderRequest;
  seek: SeekMode;
  batch: number;
  workers: number | undefined;
  cache: string | false;
  timeoutMs: number | undefined;
  remote: Required<RemoteSettings> | undefined;
}

/** Validates a sampling string or object and sets its `frames` (T). */
export function normalizeSampling(value: unknown, frames: number | undefined, field = 'sampling'): Sampling {
  if (value === undefined) return { kind: 'uniform', frames: frames ?? 16 };
  if (typeof value === 'string') return parseSampling(value, frames ?? 16, field);
  if (!isPlainObject(value)) throw invalid(field, 'a sampling string or object', value);
  return validateSampling({ ...value, frames: frames ?? value.frames ?? 16 }, field);
}

/** `remote`: a Redis URL, and optionally a queue name and a timeout. */
function validateRemote(value: unknown): Required<RemoteSettings> {
  if (!isPlainObject(value)) throw invalid('remote', 'an object { redis, queue?, timeoutMs? }', value);
  return {
    redis: checkRedisUrl('remote.redis', value.redis),
    queue: value.queue === undefined ? DEFAULT_QUEUE : checkQueueName('remote.queue', value.queue),
    timeoutMs: value.timeoutMs === undefined ? DEFAULT_REDIS_TIMEOUT_MS : positiveInteger('remote.timeoutMs', value.timeoutMs, LIMITS.timeoutMs),
  };
}

/** Fills defaults and validates; throws TypeError / UsageError before any work. */
export function resolveOptions(options: PipelineOptions = {}): ResolvedOptions {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const frames = options.frames === undefined ? undefined : positiveInteger('frames', options.frames, LIMITS.frames);
  const sampling = normalizeSampling(options.sampling, frames);
  const sizeOption = options.size === undefined ? undefined : positiveInteger('size', options.size, LIMITS.size);
  const normalize = options.normalize === undefined ? undefined : validateNormalization('normalize', options.normalize);
  const backbone = parseBackboneSpec('backbone', options.backbone, { inputSize: sizeOption, normalize });
  const cache = options.cache === undefined ? defaultCacheDir() : options.cache;
  const concurrency = options.concurrency === undefined ? Math.max(1, Math.min(2, availableParallelism())) : positiveInteger('concurrency', options.concurrency, LIMITS.parallel);
  if (cache !== false && (typeof cache !== 'string' || cache.length === 0)) throw invalid('cache', 'a folder path or false', cache);
  // Jobs carry no seek mode yet: workers decode exact frames.
  if (options.seek === 'keyframe' && options.remote !== undefined) throw conflict('seek', 'remote', "workers decode exact frames; 'keyframe' runs locally only");
  return {
    backbone,
    frames: sampling.frames,
    size: sizeOption,
    fit: options.fit === undefined ? 'cover' : oneOf('fit', options.fit, ['cover', 'contain'] as const),
    sampling,
    engine: options.engine === undefined ? 'auto' : oneOf('engine', options.engine, ['auto', 'onnx', 'tfjs'] as const),
    backend: options.backend === undefined ? 'auto' : oneOf('backend', options.backend, ['auto', 'tensorflow', 'wasm', 'cpu'] as const),
    concurrency,
    threads: options.threads === undefined ? 0 : nonNegativeInteger('threads', options.threads, LIMITS.parallel),
    decoder: options.decoder === undefined ? 'auto' : oneOf('decoder', options.decoder, DECODER_REQUESTS),
    seek: options.seek === undefined ? 'exact' : oneOf('seek', options.seek, ['exact', 'keyframe'] as const),
    batch: options.batch === undefined ? 4 : positiveInteger('batch', options.batch, LIMITS.batch),
    workers: options.workers === undefined ? undefined : nonNegativeInteger('workers', options.workers, LIMITS.parallel),
    cache,
    timeoutMs: options.timeoutMs === undefined ? undefined : positiveInteger('timeoutMs', options.timeoutMs, LIMITS.timeoutMs),
    remote: options.remote === undefined ? undefined : validateRemote(options.remote),
  };
}
