/**
 * `EmbedRunner`: the contract of whatever turns a list of videos into frame embeddings, in
 * input order, one result or error record per video. The local runner (`local-runner.ts`)
 * is one; a distributed runner keeps the same contract, so the tasks above do not change.
 */
import type { RecordErrorCode } from '../errors.js';
import type { BackboneInfo } from './backbone-spec.js';
import type { CachedClip } from './cache.js';
import type { ProgressCallback } from './progress.js';

/** An error record: one per video that could not be processed. */
export interface ErrorRecord {
  path: string;
  /** The span of the video, for a manifest row that names one. */
  start?: number;
  end?: number;
  error: { code: RecordErrorCode; message: string };
}

/** True when `record` is an error record. */
export function isErrorRecord(record: unknown): record is ErrorRecord {
  return typeof record === 'object' && record !== null && 'error' in record;
}

/** One video to embed: a path, and for a manifest row, the span of it to sample. */
export interface EmbedItem {
  path: string;
  start?: number;
  end?: number;
}

/**
 * The span of `item` (a manifest row's start and end), only the fields it has: with the
 * path it names the unit of work, which records, resume and npy names key on.
 */
export function spanOf(item: EmbedItem): { start?: number; end?: number } {
  return {
    ...(item.start !== undefined ? { start: item.start } : {}),
    ...(item.end !== undefined ? { end: item.end } : {}),
  };
}

/** `outcome` with the span of the item it is for (an error record keeps its path, span, error order). */
export function withSpan<R extends { path: string }>(outcome: R, item: EmbedItem): R {
  const span = spanOf(item);
  if (span.start === undefined && span.end === undefined) return outcome;
  const { path, ...rest } = outcome;
  return { path, ...span, ...rest } as unknown as R;
}

/** The frame embeddings of one video, as a runner gives them. */
export interface VideoFrames {
  path: string;
  clips: CachedClip[];
  /** Frames per clip, T. */
  frames: number;
  /** Embedding size, D. */
  dim: number;
  /** float32 [clips, T, D] */
  embeddings: Float32Array;
  /** True when the embeddings came from the store. */
  cached: boolean;
  /**
   * What ran the backbone, as the store and the job results keep it: the tfjs backend when the
   * engine was tfjs, else the engine (`engineOf()` in src/engines splits it).
   */
  backend?: string;
  /** The decoder that decoded the frames (`libav` or `cli`), stored with a cache entry. */
  decoder?: string;
}

/** Options of one `EmbedRunner.run()`. */
export interface RunOptions {
  /** Stops the run: finished results are yielded, then it rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Progress events (throttled, and a final one). */
  onProgress?: ProgressCallback;
  /** Items (path and span) to leave out, such as those already in an output being resumed. @default none */
  skip?: (item: EmbedItem) => boolean;
}

/**
 * Runs a backbone over videos (in this process, or across machines). A `Pipeline` (the embed
 * task, which holds a runner and is not one) says what its runner says about the backbone.
 */
export interface EmbedRunner {
  /** The backbone's id. */
  readonly backboneId: string;
  /** Embedding size D. */
  readonly dim: number;
  /** Frame side S. */
  readonly size: number;
  /** What saved models record about the backbone. */
  readonly backbone: BackboneInfo;
  /** The engine that runs the backbone and why (`none` while every result so far came from the store). */
  readonly engine: { name: string; reason: string };
  /** The tfjs backend and why: present only when the engine is `tfjs`. */
  readonly backend?: { name: string; reason: string };
  /**
   * The decoder on this machine (`libav` or `cli`) and why: an `auto` that fell back to the
   * CLI says so. A remote runner's workers choose their own.
   */
  readonly decoder?: { name: string; reason: string };
  /** Yields `[item, frames | error record]` in input order. */
  run<I extends EmbedItem>(
    items: readonly I[],
    options?: RunOptions,
  ): AsyncGenerator<[I, VideoFrames | ErrorRecord]>;
  /** Releases the backbone, its workers and tensors. */
  close(): Promise<void>;
}
