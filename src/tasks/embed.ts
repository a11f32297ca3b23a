/**
 * `createPipeline()`: the embedding task behind `framewise embed` and the library. It owns
 * one runner (the backbone and its settings) and turns its frames into `EmbedResult`s.
 */
import { openRunner } from '../runners/registry.js';
import { engineOf } from '../engines/index.js';
import type { ProgressCallback } from '../embedding/progress.js';
import {
  isErrorRecord,
  spanOf,
  withSpan,
  type EmbedRunner,
  type ErrorRecord,
  type VideoFrames,
} from '../embedding/runner.js';
import type { Sampling } from '../ingest/types.js';
import { UsageError } from '../errors.js';
import { checkSignal, invalid, isPlainObject, raceAbort } from '../validate.js';
import { entriesOf, type InputEntry, type Inputs } from './inputs.js';
import { resolveOptions } from '../runners/options.js';
import type { PipelineOptions } from '../embedding/options.js';

/** Options of one `embed()` run. */
export interface EmbedOptions {
  /** Stops the run: the iteration ends promptly, children are killed. */
  signal?: AbortSignal;
  /** Receives progress events (throttled, plus a final one). */
  onProgress?: ProgressCallback;
  /**
   * Entries (a path, and a manifest row's span) to leave out, e.g. those already in an output being resumed.
   * @default none
   */
  skip?: (entry: InputEntry) => boolean;
}

/** One clip's embeddings. */
export interface ClipEmbedding {
  index: number;
  /** Span of the clip in seconds. */
  start: number;
  end: number;
  /** The real presentation time of each of the T frames. */
  timestamps: number[];
  /** T flags; false marks a frame repeated to pad a short video. */
  mask: boolean[];
  /** The clip embedding: the mean of the frame embeddings over the real frames, float32 [D]. */
  embedding: Float32Array;
  /** The frame embeddings, float32 [T * D] (row t at t * D). */
  frames: Float32Array;
  warnings?: string[];
}

/** The embeddings of one video. */
export interface EmbedResult {
  path: string;
  /** The span of the video, for a manifest row that names one. */
  start?: number;
  end?: number;
  /** The label from a manifest or a folder-per-class dataset, when there is one. */
  label?: string;
  /** The backbone id (name and hash of topology and weights). */
  backbone: string;
  /** Embedding size D. */
  dim: number;
  /** Frames per clip T. */
  frameCount: number;
  clips: ClipEmbedding[];
  /** All frame embeddings, float32 [clips, T, D]; the clips' `frames` are views of it. */
  embeddings: Float32Array;
  /** True when the embeddings came from the cache. */
  cached: boolean;
  /** The engine that computed the embeddings: `onnx` or `tfjs` (for a cache hit, the one that computed them then). */
  engine?: string;
  /** The tfjs backend that computed them (`tensorflow`, `wasm` or `cpu`), when the engine is `tfjs`. */
  backend?: string;
  /** The decoder that decoded the frames: `libav` or `cli` (for a cache hit, the one that decoded them then). */
  decoder?: string;
}

/**
 * A pipeline: one backbone and its settings. The backbone loads at the first `embed()`,
 * once that call's inputs are found, so an input error costs no backbone load (nor, on a
 * fresh machine, its conversion). What it says of its backbone is its runner's: `backboneId`,
 * `dim` and `size` are known once the backbone has loaded (they throw a UsageError before),
 * and `engine` is `none` until the backbone is first needed (`backend`, the tfjs backend, absent).
 */
export interface Pipeline
  extends Pick<EmbedRunner, 'backboneId' | 'dim' | 'size' | 'engine' | 'backend' | 'decoder' | 'close'> {
  readonly frames: number;
  readonly sampling: Sampling;
  /**
   * Embeds files, folders and manifests (or entries from `discoverInputs`), one result or
   * error record per video, in a stable order.
   */
  embed(inputs: Inputs, options?: EmbedOptions): AsyncGenerator<EmbedResult | ErrorRecord>;
}

/** Clip embedding: the mean over the real (unmasked) frames. */
export function meanOverMask(frames: Float32Array, mask: boolean[], dim: number): Float32Array {
  const out = new Float32Array(dim);
  let count = 0;
  mask.forEach((real, t) => {
    if (!real) return;
    count += 1;
    for (let d = 0; d < dim; d++) out[d] += frames[t * dim + d];
  });
  if (count > 0) for (let d = 0; d < dim; d++) out[d] /= count;
  return out;
}

/** Turns engine frames into the public result. */
function toEmbedResult(entry: InputEntry, video: VideoFrames, backboneId: string): EmbedResult {
  const { frames: T, dim: D } = video;
  const clips = video.clips.map((clip, i): ClipEmbedding => {
    const frames = video.embeddings.subarray(i * T * D, (i + 1) * T * D);
    return { ...clip, embedding: meanOverMask(frames, clip.mask, D), frames };
  });
  return {
    path: video.path,
    ...spanOf(entry),
    ...(entry.label !== undefined ? { label: entry.label } : {}),
    backbone: backboneId,
    dim: D,
    frameCount: T,
    clips,
    embeddings: video.embeddings,
    cached: video.cached,
    ...engineOf(video.backend),
    ...(video.decoder ? { decoder: video.decoder } : {}),
  };
}

/**
 * Checks the options and returns a pipeline; the backbone loads at its first `embed()`.
 *
 * ```ts
 * const fw = await createPipeline({ frames: 16 });
 * for await (const r of fw.embed(['videos/'])) if (!isErrorRecord(r)) console.log(r.path, r.clips[0].embedding);
 * await fw.close();
 * ```
 */
export async function createPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const signal = checkSignal('signal', options.signal);
  const resolved = resolveOptions(options);
  let opening: Promise<EmbedRunner> | undefined;
  let runner: EmbedRunner | undefined;
  const open = async (runSignal: AbortSignal | undefined): Promise<EmbedRunner> => {
    // The load is the pipeline's (its own signal stops it); a run's signal stops only the wait.
    opening ??= openRunner(resolved, signal);
    opening.catch(() => undefined);
    runner = await raceAbort(opening, runSignal);
    return runner;
  };
  const loaded = (field: string): EmbedRunner => {
    if (!runner)
      throw new UsageError(
        `\`pipeline.${field}\` is known once the backbone has loaded, at the first embed()`,
      );
    return runner;
  };
  return {
    get backboneId() {
      return loaded('backboneId').backboneId;
    },
    get dim() {
      return loaded('dim').dim;
    },
    get size() {
      return loaded('size').size;
    },
    frames: resolved.frames,
    sampling: resolved.sampling,
    get engine() {
      return runner?.engine ?? { name: 'none', reason: 'not loaded: no embed() has needed the backbone yet' };
    },
    get backend() {
      return runner?.backend;
    },
    get decoder() {
      return runner?.decoder;
    },
    async *embed(inputs, embedOptions = {}) {
      if (!isPlainObject(embedOptions as unknown))
        throw invalid('options', 'an options object', embedOptions);
      const runSignal = checkSignal('signal', embedOptions.signal);
      const entries = await entriesOf(inputs, { signal: runSignal });
      const opened = await open(runSignal);
      for await (const [entry, outcome] of opened.run(entries, {
        signal: runSignal,
        onProgress: embedOptions.onProgress,
        skip: embedOptions.skip,
      })) {
        yield isErrorRecord(outcome)
          ? withSpan(outcome, entry)
          : toEmbedResult(entry, outcome, opened.backboneId);
      }
    },
    async close() {
      const pending = opening;
      opening = undefined;
      await (await pending?.catch(() => undefined))?.close();
    },
  };
}
