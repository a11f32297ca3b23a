/**
 * The run options, as types: what `createPipeline()` and every task take (`PipelineOptions`),
 * and what they become once resolved (`ResolvedOptions`), the one object handed down to the
 * runners, the engines and the decoders. The contract lives here, below the layers that read
 * it; `runners/options.ts` resolves it against the registries, once, at the boundary.
 */
import type { BackboneSpec, Normalization } from './backbone-spec.js';
import type { Fit, Sampling } from '../ingest/types.js';
import type { SeekMode } from '../ingest/decode-plan.js';
import type { DecoderRequest } from '../ingest/decoders.js';
import type { EngineRequest } from '../engines/index.js';
import type { BackendRequest } from '../tfjs/backends.js';

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
