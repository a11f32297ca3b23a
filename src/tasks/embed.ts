/**
 * `createPipeline()`: the embedding task behind `framewise embed` and the library. It owns
 * one runner (the backbone and its settings) and turns its frames into `EmbedResult`s.
 */
import { createLocalRunner } from '../embedding/local-runner.js';
import type { ProgressCallback } from '../embedding/progress.js';
import { isErrorRecord, type EmbedRunner, type ErrorRecord, type VideoFrames } from '../embedding/runner.js';
import type { Sampling } from '../ingest/types.js';
import { checkSignal, invalid, isPlainObject } from '../validate.js';
import { entriesOf, type InputEntry, type Inputs } from './inputs.js';
import { resolveOptions, type PipelineOptions, type ResolvedOptions } from './options.js';

/** Options of one `embed()` run. */
export interface EmbedOptions {
  /** Stops the run: the iteration ends promptly, children are killed. */
  signal?: AbortSignal;
  /** Receives progress events (throttled, plus a final one). */
  onProgress?: ProgressCallback;
  /**
   * Paths to leave out (e.g. those already in an output being resumed).
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
  /** The decoder that decoded the frames: `libav` or `cli` (for a cache hit, the one that decoded them then). */
  decoder?: string;
}

/** A pipeline: one loaded backbone and its settings. */
export interface Pipeline {
  readonly backboneId: string;
  readonly dim: number;
  readonly size: number;
  readonly frames: number;
  readonly sampling: Sampling;
  /** The engine (`none` until the backbone is first needed, when every result so far came from the cache). */
  readonly backend: { name: string; reason: string };
  /** The decoder (`libav` or `cli`) and why; an `auto` that fell back to the CLI says so. */
  readonly decoder?: { name: string; reason: string };
  /**
   * Embeds files, folders and manifests (or entries from `discoverInputs`), one result or
   * error record per video, in a stable order.
   */
  embed(inputs: Inputs, options?: EmbedOptions): AsyncGenerator<EmbedResult | ErrorRecord>;
  /** Releases the backbone, its workers and tensors. */
  close(): Promise<void>;
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
    ...(video.decoder ? { decoder: video.decoder } : {}),
  };
}

/** The runner for resolved options: across machines with `remote`, else the local one. */
export async function openRunner(resolved: ResolvedOptions, signal?: AbortSignal, overrides: { frames?: number; sampling?: Sampling } = {}): Promise<EmbedRunner> {
  if (resolved.remote) {
    // Loaded only here: a local run never loads the queue client.
    const { createRemoteRunner } = await import('../runners/remote-runner.js');
    return createRemoteRunner({
      backbone: resolved.backbone,
      engine: resolved.engine,
      backend: resolved.backend,
      size: resolved.size,
      sampling: overrides.sampling ?? resolved.sampling,
      fit: resolved.fit,
      timeoutMs: resolved.timeoutMs,
      cache: resolved.cache,
      remote: resolved.remote,
      signal,
    });
  }
  return createLocalRunner({
    backbone: resolved.backbone,
    engine: resolved.engine,
    backend: resolved.backend,
    size: resolved.size,
    workers: resolved.workers,
    cache: resolved.cache,
    sampling: overrides.sampling ?? resolved.sampling,
    fit: resolved.fit,
    concurrency: resolved.concurrency,
    threads: resolved.threads,
    decoder: resolved.decoder,
    seek: resolved.seek,
    batch: resolved.batch,
    inferenceConcurrency: 2,
    timeoutMs: resolved.timeoutMs,
    signal,
  });
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
  const signal = checkSignal('signal', options.signal);
  const resolved = resolveOptions(options);
  const runner = await openRunner(resolved, signal);
  return {
    backboneId: runner.backboneId,
    dim: runner.dim,
    size: runner.size,
    frames: resolved.frames,
    sampling: resolved.sampling,
    get backend() {
      return runner.backend;
    },
    get decoder() {
      return runner.decoder;
    },
    async *embed(inputs, embedOptions = {}) {
      if (!isPlainObject(embedOptions as unknown)) throw invalid('options', 'an options object', embedOptions);
      const runSignal = checkSignal('signal', embedOptions.signal);
      const entries = await entriesOf(inputs, { signal: runSignal });
      for await (const [entry, outcome] of runner.run(entries, { signal: runSignal, onProgress: embedOptions.onProgress, skip: embedOptions.skip })) {
        yield isErrorRecord(outcome) ? outcome : toEmbedResult(entry, outcome, runner.backboneId);
      }
    },
    close: () => runner.close(),
  };
}
