/**
 * The local runner: for a list of videos, in order, it gives each video's frame
 * embeddings [clips, T, D] or an error record. Per video:
 *
 *   identity -> cache lookup -> (miss) probe -> plan -> extract -> batcher -> backbone -> cache write
 *
 * Work is bounded at every step: a window of videos in flight, a p-queue with explicit
 * concurrency for decoding (with `onSizeLessThan` backpressure), and a cap on decoded clips
 * waiting for the backbone. A decode slot is held until its clips fit in the batcher, so
 * memory does not grow with the folder. Decoding of the next videos overlaps inference.
 * Results come out in input order.
 */
import PQueue from 'p-queue';
import { FramewiseError, IngestError, UsageError, type RecordErrorCode } from '../errors.js';
import type { ClipPlan, Fit, FrameClip, ProbeResult, Sampling } from '../ingest/types.js';
import { extractClips } from '../ingest/extract.js';
import { isUrl } from '../ingest/ffmpeg.js';
import { probe } from '../ingest/probe.js';
import { clipCount, planClips, samplingForSpan } from '../ingest/sampling.js';
import type { DecoderRequest } from '../ingest/decoders.js';
import type { SeekMode } from '../ingest/decode-plan.js';
import { debug } from '../log.js';
import type { FrameEmbedder } from './frame-embedder.js';
import { Batcher } from './batcher.js';
import { cacheKey, fileIdentity, type CachedClip, type EmbeddingStore } from './cache.js';
import { ProgressTracker } from './progress.js';
import type { EmbedItem, EmbedRunner, ErrorRecord, RunOptions, VideoFrames } from './runner.js';

/**
 * The most float32 values one video's embeddings may hold: 128 MiB. Its record must fit in one
 * JSON line (V8's longest string is 512 MiB, and a value written with 9 digits takes about 12
 * characters), and the window of videos in flight must fit in memory. A plan past it is that
 * video's `TOO_LARGE` record; past 2^32 values it would not even allocate.
 */
const MAX_VIDEO_VALUES = 2 ** 25;

/** The ingest functions the runner calls. */
export interface IngestStages {
  probe(path: string, options: { signal?: AbortSignal; timeoutMs?: number; decoder?: DecoderRequest }): Promise<ProbeResult>;
  planClips(probe: ProbeResult, sampling: Sampling): ClipPlan[];
  extractClips(
    path: string,
    plans: ClipPlan[],
    options: { size: number; fit: Fit; signal?: AbortSignal; timeoutMs?: number; probe?: ProbeResult; threads?: number; decoder?: DecoderRequest; seek?: SeekMode },
  ): Promise<FrameClip[]>;
}

export interface LocalRunnerOptions {
  sampling: Sampling;
  size: number;
  fit: Fit;
  /** ffmpeg decodes running at once. */
  concurrency: number;
  /** Clips per backbone call. */
  batch: number;
  /** Backbone calls running at once. */
  inferenceConcurrency: number;
  /** Per-video extraction timeout in ms; undefined for ingest's default (scaled by duration). */
  timeoutMs: number | undefined;
  /** ffmpeg decoding threads per process (0: ffmpeg's choice). */
  threads: number;
  /** The decoder (see ingest/decoders.ts). @default 'auto' */
  decoder?: DecoderRequest;
  /** `exact` frames, or the nearest keyframes. @default 'exact' */
  seek?: SeekMode;
  /** What `decoder` resolved to (createLocalRunner sets it). */
  resolvedDecoder?: { name: 'libav' | 'cli'; reason: string };
  /**
   * Clips decoded per ffmpeg run. A long video with many windows is decoded in parts of
   * this many clips, so the decoded frames held stay bounded whatever the video's length.
   * @default 16
   */
  clipsPerDecode?: number;
  store?: EmbeddingStore;
}

/** The ingest stages the runner calls on this machine. */
export const ingestStages: IngestStages = { probe, planClips, extractClips };

/** Where the failures of a video become records instead of ending the run. */
function recordableCode(error: unknown): RecordErrorCode | undefined {
  if (error instanceof IngestError) return error.code as RecordErrorCode;
  if (error instanceof FramewiseError && ['FFMPEG', 'TIMEOUT', 'SHAPE', 'CORRUPT', 'UNSUPPORTED'].includes(error.code)) return error.code as RecordErrorCode;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') return code as RecordErrorCode;
  return undefined;
}

type Outcome<T> = { kind: 'ok'; value: T } | { kind: 'error'; record: ErrorRecord } | { kind: 'fatal'; error: unknown };

interface Slot<T> {
  promise: Promise<Outcome<T>>;
  settled?: Outcome<T>;
}

/** The runner on this machine: ffmpeg decodes, a batcher, and an engine's `FrameEmbedder`. */
export class LocalRunner implements EmbedRunner {
  private closed = false;
  constructor(
    private readonly embedder: FrameEmbedder,
    private readonly stages: IngestStages,
    private readonly options: LocalRunnerOptions,
    /** Dispose the embedder on `close()`. @default true */
    private readonly ownsEmbedder = true,
  ) {}

  get backboneId(): string {
    return this.embedder.backboneId;
  }
  get dim(): number {
    return this.embedder.dim;
  }
  get size(): number {
    return this.options.size;
  }
  get backbone() {
    return this.embedder.backbone;
  }
  get backend(): { name: string; reason: string } {
    return this.embedder.backend;
  }
  /** The decoder this runner uses, and why (an `auto` that fell back to the CLI says so). */
  get decoder(): { name: string; reason: string } {
    return this.options.resolvedDecoder ?? { name: this.options.decoder ?? 'auto', reason: 'not resolved' };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsEmbedder) await this.embedder.dispose();
  }

  /**
   * Embeds `items` in order. Yields `[item, VideoFrames | ErrorRecord]`. On abort, yields
   * the results that had already finished, then throws `signal.reason`.
   */
  async *run<I extends EmbedItem>(entries: readonly I[], runOptions: RunOptions = {}): AsyncGenerator<[I, VideoFrames | ErrorRecord]> {
    if (this.closed) throw new Error('The runner is closed');
    const { signal, onProgress, skip } = runOptions;
    signal?.throwIfAborted();
    const tracker = new ProgressTracker(onProgress);
    const items = tracker.select(entries, skip);
    const { concurrency, batch, inferenceConcurrency } = this.options;
    const frames = this.options.sampling.frames;
    // An internal controller stops everything on abort *and* when the consumer stops early.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const inner = controller.signal;
    const decodeQueue = new PQueue({ concurrency });
    const batcher = new Batcher(this.embedder, {
      batch,
      maxInFlight: inferenceConcurrency,
      frames,
      size: this.options.size,
      signal: inner,
      onBatch: (n) => {
        tracker.framesEmbedded += n;
      },
    });
    // Decoded clips allowed to wait for the backbone.
    const roomLimit = Math.max(batch * (inferenceConcurrency + 1), 2);
    const windowSize = concurrency + batch * inferenceConcurrency + 2;
    const window: Array<{ item: I; slot: Slot<VideoFrames> }> = [];

    const start = (item: I): void => {
      const slot: Slot<VideoFrames> = { promise: undefined as never };
      slot.promise = this.one(item, decodeQueue, batcher, roomLimit, tracker, inner).then((outcome) => {
        slot.settled = outcome;
        if (outcome.kind === 'ok') {
          tracker.succeed(outcome.value);
        } else if (outcome.kind === 'error' && !isAbortLike(outcome.record)) {
          tracker.fail(outcome.record.error.code);
        }
        tracker.emit();
        return outcome;
      });
      window.push({ item, slot });
    };

    // A heartbeat, so progress gets through while one long video decodes (the renderer throttles it).
    const heartbeat = setInterval(() => tracker.emit(), 1000).unref();
    let finished = false;
    try {
      const iterator = items[Symbol.iterator]();
      let next = iterator.next();
      while (!next.done || window.length > 0) {
        // Fill the window; decoding is gated again inside by the queue's size.
        while (!next.done && window.length < windowSize && !inner.aborted) {
          await decodeQueue.onSizeLessThan(concurrency);
          start(next.value);
          next = iterator.next();
        }
        if (inner.aborted) break;
        const head = window[0];
        const outcome = await head.slot.promise;
        // Stopped while waiting: the flush below yields what really finished, and no video the
        // signal cut short (an interrupted video writes no record, so --resume does it again).
        if (inner.aborted) break;
        window.shift();
        if (outcome.kind === 'fatal') throw outcome.error;
        yield [head.item, outcome.kind === 'ok' ? outcome.value : outcome.record];
      }
      if (inner.aborted) {
        // Let killed children and running backbone calls settle briefly, then flush what finished.
        await Promise.race([Promise.allSettled(window.map((w) => w.slot.promise)), delay(1500)]);
        for (const { item, slot } of window.splice(0)) {
          if (slot.settled?.kind === 'ok') yield [item, slot.settled.value];
          else if (slot.settled?.kind === 'error' && !isAbortLike(slot.settled.record)) yield [item, slot.settled.record];
        }
        throw signal?.reason ?? inner.reason;
      }
      finished = true;
    } finally {
      if (!finished && !inner.aborted) controller.abort(new DOMException('The iteration was stopped', 'AbortError'));
      batcher.fail(inner.reason ?? new Error('runner closed'));
      signal?.removeEventListener('abort', onAbort);
      if (!finished) {
        // Wait (briefly) for running tasks, and so their children, to end.
        await Promise.race([Promise.allSettled(window.map((w) => w.slot.promise)).then(() => decodeQueue.onIdle()), delay(1500)]);
      }
      clearInterval(heartbeat);
      tracker.emit(true, finished);
    }
  }

  /** One video, never throws: an outcome. */
  private async one(
    item: { path: string; start?: number; end?: number },
    decodeQueue: PQueue,
    batcher: Batcher,
    roomLimit: number,
    tracker: ProgressTracker,
    signal: AbortSignal,
  ): Promise<Outcome<VideoFrames>> {
    const { store, size, fit, timeoutMs, threads } = this.options;
    const decoder = this.options.decoder ?? 'auto';
    const seek = this.options.seek ?? 'exact';
    const path = item.path;
    // A manifest row may name a span of the video: a sampler that takes one (uniform) then covers only it.
    const sampling = samplingForSpan(this.options.sampling, item);
    const T = sampling.frames;
    try {
      signal.throwIfAborted();
      let key: string | undefined;
      // A URL has no file identity to key the cache by (what is behind it may change): never cached.
      if (store && !isUrl(path)) {
        const identity = await fileIdentity(path);
        // Keyframe mode returns other frames; exact frames are the same from either decoder.
        key = cacheKey({ identity, sampling, size, fit, backboneId: this.embedder.backboneId, ...(seek === 'keyframe' ? { seek } : {}) });
        const hit = await store.get(key);
        if (hit && hit.frames === T && hit.dim === this.embedder.dim) {
          tracker.cacheHits += 1;
          return { kind: 'ok', value: { path, clips: hit.clips, frames: T, dim: hit.dim, embeddings: hit.embeddings, cached: true, backend: hit.backend, ...(hit.decoder ? { decoder: hit.decoder } : {}) } };
        }
      }
      // A miss: the model is needed, so start loading it while this video decodes.
      this.embedder.prepare?.();
      // Decode under the queue, a part of the plan at a time; each task holds its slot until
      // its clips fit in the batcher, so at most `roomLimit` decoded clips wait for the backbone.
      const D = this.embedder.dim;
      const part = this.options.clipsPerDecode ?? 16;
      let probe: ProbeResult | undefined;
      let plans: ClipPlan[] = [];
      let embeddings = new Float32Array(0); // [clips, T, D], sized once the plan is known
      const layout: CachedClip[] = [];
      const embedded: Array<Promise<void>> = [];
      for (let first = 0; first === 0 || first < plans.length; first += part) {
        const clips = await decodeQueue.add(async () => {
          // The queue only stops *waiting* on abort; the task itself must stop, so it checks
          // the signal and hands it to every child it starts.
          signal.throwIfAborted();
          if (!probe) {
            // --timeout bounds every child of this video, ffprobe too.
            probe = await this.stages.probe(path, { signal, decoder, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
            checkPlanSize(path, clipCount(probe, sampling), T, D, sampling);
            plans = this.stages.planClips(probe, sampling);
          }
          const decoded = await this.stages.extractClips(path, plans.slice(first, first + part), { size, fit, signal, timeoutMs, probe, threads, decoder, seek });
          await batcher.waitForRoom(roomLimit);
          return decoded;
        });
        if (embeddings.length === 0) embeddings = new Float32Array(plans.length * T * D);
        clips.forEach((clip, j) => {
          const offset = (first + j) * T * D;
          const done = batcher.embed(clip.data).then((out) => embeddings.set(out, offset)); // [T, D]
          done.catch(() => undefined); // awaited below; a later part's failure must not leave it unhandled
          embedded.push(done);
          layout.push({
            index: clip.index,
            start: clip.start,
            end: clip.end,
            timestamps: clip.timestamps,
            mask: clip.mask,
            ...(clip.warnings?.length ? { warnings: clip.warnings } : {}),
          });
        });
      }
      await Promise.all(embedded);
      tracker.videosDecoded += 1;
      const backend = this.embedder.backend.name;
      const used = this.decoder.name;
      if (store && key) await store.set(key, { clips: layout, frames: T, dim: D, embeddings, backend, decoder: used });
      return { kind: 'ok', value: { path, clips: layout, frames: T, dim: D, embeddings, cached: false, backend, decoder: used } };
    } catch (error) {
      if (signal.aborted) return { kind: 'error', record: { path, error: { code: 'ABORTED', message: 'aborted' } } };
      const code = recordableCode(error);
      if (code) {
        debug('runner: %s failed with %s: %s', path, code, (error as Error).message);
        return { kind: 'error', record: { path, error: { code, message: (error as Error).message } } };
      }
      return { kind: 'fatal', error };
    }
  }
}

/** A `TOO_LARGE` error, before anything is allocated, when a plan's embeddings would pass `MAX_VIDEO_VALUES`. */
function checkPlanSize(path: string, clips: number, T: number, D: number, sampling: Sampling): void {
  if (clips * T * D <= MAX_VIDEO_VALUES) return;
  const mib = (values: number): string => `${Math.round((values * 4) / 2 ** 20).toLocaleString('en-US')} MiB`;
  const how = sampling.kind === 'fps' ? `a lower rate (--sampling fps:<n>) or a stride that skips frames (fps:<n>/<stride>)` : `a longer stride (--sampling window:<length>/<stride>)`;
  throw new IngestError(
    'TOO_LARGE',
    path,
    `${path}: the sampling plan is ${clips.toLocaleString('en-US')} clips of ${T} frames, ${mib(clips * T * D)} of embeddings, over the limit of ${mib(MAX_VIDEO_VALUES)} per video; ` +
      `sample fewer frames: ${how}, or cut the video into spans in a manifest`,
  );
}

function isAbortLike(record: ErrorRecord): boolean {
  return record.error.code === 'ABORTED';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** A size that does not match the backbone. */
export function checkSize(size: number | undefined, inputSize: number): number {
  if (size !== undefined && size !== inputSize) {
    throw new UsageError(`\`size\` ${size} does not match the backbone's input size ${inputSize}; frames must be ${inputSize}x${inputSize}`);
  }
  return inputSize;
}
