/**
 * `createPipeline()`: the embedding pipeline behind `framewise embed` and the library.
 * It owns one backbone (an embedder) and runs the bounded engine over discovered inputs.
 */
import { debug } from '../log.js';
import { checkSignal, invalid, isPlainObject } from '../validate.js';
import { EmbeddingCache } from '../embedding/cache.js';
import { EmbedEngine, isErrorRecord, type ErrorRecord, type VideoFrames } from '../embedding/local-runner.js';
import { resolveOptions, checkSize, type PipelineOptions, type ResolvedOptions } from './options.js';
import { ProgressTracker, type ProgressCallback } from '../embedding/progress.js';
import { createBackbone, discoverInputs, ingestStages, type InputEntry } from '../engines/index.js';
import type { EmbedderLike } from '../embedding/frame-embedder.js';
import type { Sampling } from '../ingest/types.js';

export type { ErrorRecord } from '../embedding/local-runner.js';
export { isErrorRecord } from '../embedding/local-runner.js';

/** Options of one `embed()` run. */
export interface EmbedOptions {
  /** Stops the run: the iteration ends promptly, children are killed. */
  signal?: AbortSignal;
  /** Receives progress events (throttled, plus a final one). */
  onProgress?: ProgressCallback;
  /**
   * Paths to leave out (e.g. those already in an output being resumed). Matched as given and resolved.
   * @default none
   */
  skip?: (path: string) => boolean;
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
  /** The tfjs backend that computed the embeddings (recorded in the cache). */
  backend?: string;
}

/** A pipeline: one loaded backbone and its settings. */
export interface Pipeline {
  readonly backboneId: string;
  readonly dim: number;
  readonly size: number;
  readonly frames: number;
  readonly sampling: Sampling;
  /** The backend (`none` until the backbone is first needed, when every result so far came from the cache). */
  readonly backend: { name: string; reason: string };
  /** Embeds files, folders and manifests, one result (or error record) per video, in a stable order. */
  embed(inputs: string | string[], options?: EmbedOptions): AsyncGenerator<EmbedResult | ErrorRecord>;
  /** Releases the backbone, its workers and tensors. */
  close(): Promise<void>;
}

/** Internal: a pipeline that also exposes the raw engine to the other runners. */
export interface PipelineInternals extends Pipeline {
  readonly options: ResolvedOptions;
  readonly embedder: EmbedderLike;
  /** Runs the engine over already-discovered entries. */
  run<I extends { path: string }>(
    entries: I[],
    options: EmbedOptions & { tracker?: ProgressTracker },
  ): AsyncGenerator<[I, VideoFrames | ErrorRecord]>;
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
export function toEmbedResult(entry: InputEntry, video: VideoFrames, backboneId: string): EmbedResult {
  const { frames: T, dim: D } = video;
  const clips = video.clips.map((clip, i): ClipEmbedding => {
    const frames = video.embeddings.subarray(i * T * D, (i + 1) * T * D);
    return {
      index: clip.index,
      start: clip.start,
      end: clip.end,
      timestamps: clip.timestamps,
      mask: clip.mask,
      embedding: meanOverMask(frames, clip.mask, D),
      frames,
      ...(clip.warnings ? { warnings: clip.warnings } : {}),
    };
  });
  return {
    path: video.path,
    ...(entry.label !== undefined ? { label: entry.label } : {}),
    backbone: backboneId,
    dim: D,
    frameCount: T,
    clips,
    embeddings: video.embeddings,
    cached: video.cached,
    ...(video.backend ? { backend: video.backend } : {}),
  };
}

/**
 * Loads the backbone and returns a pipeline.
 *
 * ```ts
 * const fw = await createPipeline({ frames: 16 });
 * for await (const r of fw.embed(['videos/'])) if (!isErrorRecord(r)) console.log(r.path, r.clips[0].embedding);
 * await fw.close();
 * ```
 */
export async function createPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  return createPipelineInternal(options);
}

export async function createPipelineInternal(options: PipelineOptions = {}, embedderIn?: EmbedderLike): Promise<PipelineInternals> {
  const signal = checkSignal('signal', options.signal);
  const resolved = resolveOptions(options);
  const embedder =
    embedderIn ??
    (await createBackbone({
      backbone: resolved.backbone,
      backend: resolved.backend,
      cacheDir: resolved.cache === false ? undefined : resolved.cache,
      workers: resolved.workers,
      signal,
      lazy: true,
    }));
  let size: number;
  try {
    size = checkSize(resolved.size, embedder.inputSize);
  } catch (error) {
    if (!embedderIn) await embedder.dispose();
    throw error;
  }
  const cache = resolved.cache === false ? undefined : new EmbeddingCache(resolved.cache);
  const engine = new EmbedEngine(embedder, ingestStages, {
    sampling: resolved.sampling,
    size,
    fit: resolved.fit,
    concurrency: resolved.concurrency,
    threads: resolved.threads,
    batch: resolved.batch,
    inferenceConcurrency: 2,
    timeoutMs: resolved.timeoutMs,
    cache,
  });
  debug('pipeline: backbone %s on %s (%s)', embedder.backboneId, embedder.backend.name, embedder.backend.reason);
  let closed = false;

  async function* run<I extends { path: string }>(entries: I[], runOptions: EmbedOptions & { tracker?: ProgressTracker } = {}) {
    if (closed) throw new Error('The pipeline is closed');
    const tracker = runOptions.tracker ?? new ProgressTracker(runOptions.onProgress);
    const todo = runOptions.skip ? entries.filter((e) => !runOptions.skip!(e.path)) : entries;
    tracker.videosSkipped += entries.length - todo.length;
    tracker.videosTotal += todo.length;
    tracker.emit(true);
    yield* engine.run(todo, tracker, runOptions.signal);
  }

  return {
    options: resolved,
    embedder,
    backboneId: embedder.backboneId,
    dim: embedder.dim,
    size,
    frames: resolved.frames,
    sampling: resolved.sampling,
    get backend() {
      return embedder.backend;
    },
    run,
    async *embed(inputs, embedOptions = {}) {
      if (!isPlainObject(embedOptions as unknown)) throw invalid('options', 'an options object', embedOptions);
      const runSignal = checkSignal('signal', embedOptions.signal);
      const entries = await discoverInputs(inputs, { signal: runSignal });
      for await (const [entry, outcome] of run(entries, embedOptions)) {
        yield isErrorRecord(outcome) ? outcome : toEmbedResult(entry, outcome, embedder.backboneId);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (!embedderIn) await embedder.dispose();
    },
  };
}
