/**
 * Options shared by every runner, validated at the boundary before any process is spawned
 * or any tensor allocated. The settings of a run across machines are here too, pure, so
 * that the tasks, the runners and the CLI share one check of each without importing up.
 * The samplers, fits, engines and backends are checked against their registries, which is
 * why this file sits with the runners, above the engines, and not in `embedding/`.
 */
import { availableParallelism } from 'node:os';
import { parseSampling, validateSampling } from '../ingest/sampling.js';
import { FIT_NAMES, type Fit, type Sampling } from '../ingest/types.js';
import type { SeekMode } from '../ingest/decode-plan.js';
import { decoderRequests, type DecoderRequest } from '../ingest/decoders.js';
import {
  parseBackboneSpec,
  validateNormalization,
  type BackboneSpec,
  type Normalization,
} from '../embedding/backbone-spec.js';
import { defaultCacheDir } from '../fs.js';
import { UsageError } from '../errors.js';
import { engineRequests, type EngineRequest } from '../engines/index.js';
import { BACKEND_REQUESTS, type BackendRequest } from '../tfjs/backends.js';
import {
  boolean,
  invalid,
  isPlainObject,
  LIMITS,
  nonNegativeInteger,
  oneOf,
  positiveInteger,
} from '../validate.js';
import { SEEK_MODES } from '../ingest/decode-plan.js';

/** A run across machines: the Redis that holds the queue (`remote` in the options). */
export interface RemoteSettings {
  /** The Redis that holds the queue: `redis://host:6379[/db]` (or `rediss://`). */
  redis: string;
  /** @default 'framewise' */
  queue?: string;
  /** How long to wait for an unreachable Redis before the run fails. @default 60000 */
  timeoutMs?: number;
  /**
   * A PEM file holding the CA that signed a `rediss://` server's certificate (a private CA).
   * @default Node's CA list
   */
  redisCa?: string;
  /**
   * Refuse a Redis whose `maxmemory-policy` is not `noeviction` (it may evict jobs and locks),
   * instead of warning.
   * @default false
   */
  strictRedis?: boolean;
}

/** `remote` with every default filled in. */
export type ResolvedRemote = Required<Omit<RemoteSettings, 'redisCa'>> & { redisCa: string | undefined };

/** The queue name when none is given. */
export const DEFAULT_QUEUE = 'framewise';
/** How Redis waits are bounded when the caller gives no timeout. */
export const DEFAULT_REDIS_TIMEOUT_MS = 60_000;

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
  fit?: Fit;
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
  engine?: EngineRequest;
  /**
   * The tfjs backend (for the heads, and for the backbone when tfjs runs it).
   * @default 'auto' (tfjs-node, then wasm, then cpu)
   */
  backend?: BackendRequest;
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
  /**
   * Called when the backbone must be prepared before its first use, which takes seconds
   * (converting it to ONNX, once per cache folder); the message says so, e.g. `preparing
   * mobilenet_v2 for ONNX Runtime, once`. The CLI shows it on the progress line.
   * @default none
   */
  onPrepare?: (message: string) => void;
  /** Aborts loading the backbone. */
  signal?: AbortSignal;
}

export interface ResolvedOptions {
  backbone: BackboneSpec;
  frames: number;
  size: number | undefined;
  fit: Fit;
  sampling: Sampling;
  engine: EngineRequest;
  backend: BackendRequest;
  concurrency: number;
  threads: number;
  decoder: DecoderRequest;
  seek: SeekMode;
  batch: number;
  workers: number | undefined;
  cache: string | false;
  timeoutMs: number | undefined;
  remote: ResolvedRemote | undefined;
  onPrepare: ((message: string) => void) | undefined;
}

/** Validates a sampling string or object and sets its `frames` (T). */
export function normalizeSampling(value: unknown, frames: number | undefined, field = 'sampling'): Sampling {
  if (value === undefined) return { kind: 'uniform', frames: frames ?? 16 };
  if (typeof value === 'string') return parseSampling(value, frames ?? 16, field);
  if (!isPlainObject(value)) throw invalid(field, 'a sampling string or object', value);
  return validateSampling({ ...value, frames: frames ?? value.frames ?? 16 }, field);
}

/** `remote`: a Redis URL, and optionally a queue name and a timeout. */
function validateRemote(value: unknown): ResolvedRemote {
  if (!isPlainObject(value))
    throw invalid('remote', 'an object { redis, queue?, timeoutMs?, redisCa?, strictRedis? }', value);
  const redis = checkRedisUrl('remote.redis', value.redis);
  return {
    redis,
    redisCa: checkRedisCa('remote.redisCa', value.redisCa, redis),
    strictRedis: value.strictRedis === undefined ? false : boolean('remote.strictRedis', value.strictRedis),
    queue: value.queue === undefined ? DEFAULT_QUEUE : checkQueueName('remote.queue', value.queue),
    timeoutMs:
      value.timeoutMs === undefined
        ? DEFAULT_REDIS_TIMEOUT_MS
        : positiveInteger('remote.timeoutMs', value.timeoutMs, LIMITS.timeoutMs),
  };
}

/** Fills defaults and validates; throws TypeError / UsageError before any work. */
export function resolveOptions(options: PipelineOptions = {}): ResolvedOptions {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const frames =
    options.frames === undefined ? undefined : positiveInteger('frames', options.frames, LIMITS.frames);
  const sampling = normalizeSampling(options.sampling, frames);
  const sizeOption =
    options.size === undefined ? undefined : positiveInteger('size', options.size, LIMITS.size);
  const normalize =
    options.normalize === undefined ? undefined : validateNormalization('normalize', options.normalize);
  const backbone = parseBackboneSpec('backbone', options.backbone, { inputSize: sizeOption, normalize });
  const cache = options.cache === undefined ? defaultCacheDir() : options.cache;
  const concurrency =
    options.concurrency === undefined
      ? Math.max(1, Math.min(2, availableParallelism()))
      : positiveInteger('concurrency', options.concurrency, LIMITS.parallel);
  if (cache !== false && (typeof cache !== 'string' || cache.length === 0))
    throw invalid('cache', 'a folder path or false', cache);
  if (options.onPrepare !== undefined && typeof options.onPrepare !== 'function')
    throw invalid('onPrepare', 'a function', options.onPrepare);
  return {
    backbone,
    frames: sampling.frames,
    size: sizeOption,
    fit: options.fit === undefined ? 'cover' : oneOf('fit', options.fit, FIT_NAMES),
    sampling,
    engine: options.engine === undefined ? 'auto' : oneOf('engine', options.engine, engineRequests()),
    backend: options.backend === undefined ? 'auto' : oneOf('backend', options.backend, BACKEND_REQUESTS),
    concurrency,
    threads:
      options.threads === undefined ? 0 : nonNegativeInteger('threads', options.threads, LIMITS.parallel),
    decoder: options.decoder === undefined ? 'auto' : oneOf('decoder', options.decoder, decoderRequests()),
    seek: options.seek === undefined ? 'exact' : oneOf('seek', options.seek, SEEK_MODES),
    batch: options.batch === undefined ? 4 : positiveInteger('batch', options.batch, LIMITS.batch),
    workers:
      options.workers === undefined
        ? undefined
        : nonNegativeInteger('workers', options.workers, LIMITS.parallel),
    cache,
    timeoutMs:
      options.timeoutMs === undefined
        ? undefined
        : positiveInteger('timeoutMs', options.timeoutMs, LIMITS.timeoutMs),
    remote: options.remote === undefined ? undefined : validateRemote(options.remote),
    onPrepare: options.onPrepare,
  };
}

/** A `redis://` or `rediss://` URL whose db, if any, is a number; a UsageError naming `field` otherwise. */
export function checkRedisUrl(field: string, value: unknown): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  // ioredis reads the path as the db number; anything else would reach Redis as `SELECT NaN`.
  const db = url?.pathname ?? '';
  if (
    !url ||
    (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ||
    !url.hostname ||
    !/^\/?\d*$/.test(db)
  ) {
    throw new UsageError(
      `Expected a Redis URL (redis://host:6379[/db], the db a number) for \`${field}\` but received ${JSON.stringify(redactUrl(String(value)))}`,
    );
  }
  return String(value);
}

/** `redisCa`: a file path, only with a `rediss://` URL (read when the connection opens). */
export function checkRedisCa(field: string, value: unknown, redis: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'a PEM file path', value);
  if (!redis.startsWith('rediss://'))
    throw new UsageError(`\`${field}\` is for a TLS Redis: give a rediss:// URL`);
  return value;
}

/** The URL with any password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** A BullMQ queue name: letters, digits, `-`, `_` and `.`. */
export function checkQueueName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(value)) {
    throw new UsageError(
      `Expected a queue name (letters, digits, '-', '_', '.') for \`${field}\` but received ${JSON.stringify(value)}`,
    );
  }
  return value;
}
