/**
 * The local runner: for a list of videos, in order, it gives each video's frame
 * embeddings [clips, T, D] or an error record. Per video:
 *
 *   identity -> cache lookup -> (miss) open (probe) -> plan -> decode -> batcher -> backbone -> cache write
 *
 * The decoder is resolved once per runner (or handed in as an object), and each video is
 * opened with it once: its metadata plans the video, and its parts are decoded through it.
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
import {
  decoderFor,
  isDecoder,
  type DecoderRequest,
  type OpenOptions,
  type OpenVideo,
  type VideoDecoder,
} from '../ingest/decoders.js';
import { isUrl } from '../ingest/open-policy.js';
import { clipCount, planClips, samplingForSpan } from '../ingest/sampling.js';
import type { SeekMode } from '../ingest/decode-plan.js';
import { debug } from '../log.js';
import type { FrameEmbedder } from './frame-embedder.js';
import { Batcher } from './batcher.js';
import { cacheKey, fileIdentity, type CachedClip, type EmbeddingStore } from './cache.js';
import type { ProgressTracker, VideoProgress } from './progress.js';
import type { EmbedItem, ErrorRecord, VideoFrames } from './runner.js';
import { BackboneRunner } from './backbone-runner.js';
import type { WindowHooks } from './ordered-window.js';

/**
 * The most float32 values one video's embeddings may hold: 128 MiB. Its record must fit in one
 * JSON line (V8's longest string is 512 MiB, and a value written with 9 digits takes about 12
 * characters), and the window of videos in flight must fit in memory. A plan past it is that
 * video's `TOO_LARGE` record; past 2^32 values it would not even allocate.
 */
const MAX_VIDEO_VALUES = 2 ** 25;

/** The ingest functions the runner calls. */
export interface IngestStages {
  /** Opens one video with the run's decoder (its metadata read once). */
  open(decoder: VideoDecoder, path: string, options: OpenOptions): Promise<OpenVideo>;
  planClips(probe: ProbeResult, sampling: Sampling): ClipPlan[];
}

/** The options of `new LocalRunner(embedder, stages, options)`: the settings of a run, with its store already built. */
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
  /**
   * The decoder (see ingest/decoders.ts): a name, resolved once by the runner, or a decoder
   * already resolved (`createDecoder()`, or one decoding in worker threads: `pooledDecoder()`),
   * which `close()` closes. @default 'auto'
   */
  decoder?: DecoderRequest | VideoDecoder;
  /** `exact` frames, or the nearest keyframes. @default 'exact' */
  seek?: SeekMode;
  /**
   * Clips decoded per ffmpeg run. A long video with many windows is decoded in parts of
   * this many clips, so the decoded frames held stay bounded whatever the video's length.
   * @default 16
   */
  clipsPerDecode?: number;
  store?: EmbeddingStore;
}

/** The ingest stages the runner calls on this machine. */
export const ingestStages: IngestStages = {
  open: (decoder, path, options) => decoder.open(path, options),
  planClips,
};

/** Where the failures of a video become records instead of ending the run. */
function recordableCode(error: unknown): RecordErrorCode | undefined {
  if (error instanceof IngestError) return error.code as RecordErrorCode;
  if (
    error instanceof FramewiseError &&
    ['FFMPEG', 'TIMEOUT', 'SHAPE', 'CORRUPT', 'UNSUPPORTED'].includes(error.code)
  )
    return error.code as RecordErrorCode;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') return code as RecordErrorCode;
  return undefined;
}

type Result = VideoFrames | ErrorRecord;
type Outcome =
  | { kind: 'ok'; value: VideoFrames }
  | { kind: 'error'; record: ErrorRecord }
  | { kind: 'fatal'; error: unknown };

/** One video in the window: its outcome, once settled. */
interface Slot {
  promise: Promise<Outcome>;
  settled?: Outcome;
}

/** The runner on this machine: ffmpeg decodes, a batcher, and an engine's `FrameEmbedder`. */
export class LocalRunner extends BackboneRunner {
  constructor(
    embedder: FrameEmbedder,
    private readonly stages: IngestStages,
    private readonly options: LocalRunnerOptions,
    /** Dispose the embedder on `close()`. @default true */
    ownsEmbedder = true,
  ) {
    super(embedder, options.size, ownsEmbedder);
  }

  private resolved: Promise<VideoDecoder> | undefined;
  /** The decoder object: `options.decoder` resolved once, on the first video that needs it. */
  private videoDecoder(): Promise<VideoDecoder> {
    this.resolved ??= decoderFor('decoder', this.options.decoder);
    return this.resolved;
  }

  /** The decoder this runner uses, and why (an `auto` that fell back to the CLI says so). */
  get decoder(): { name: string; reason: string } {
    return decoderOf(this.options);
  }

  protected window(tracker: ProgressTracker, signal: AbortSignal | undefined): LocalRun {
    return new LocalRun(this.embedder, this.stages, this.options, tracker, signal, () => this.videoDecoder());
  }

  override async close(): Promise<void> {
    try {
      const { decoder } = this.options;
      if (isDecoder(decoder)) await decoder.close?.();
    } finally {
      await super.close();
    }
  }
}

/** What `options.decoder` resolved to, or what was asked for. */
function decoderOf(options: LocalRunnerOptions): { name: string; reason: string } {
  const { decoder } = options;
  if (isDecoder(decoder)) return { name: decoder.name, reason: decoder.reason };
  return { name: decoder ?? 'auto', reason: 'not resolved' };
}

/**
 * One `LocalRunner.run()`: its decode queue, batcher, progress and stop signal, as the hooks of
 * its ordered window.
 */
class LocalRun implements WindowHooks<EmbedItem, Slot, Result> {
  /** Stops everything on abort *and* when the consumer stops early. */
  private readonly controller = new AbortController();
  readonly signal: AbortSignal = this.controller.signal;
  private readonly decodeQueue: PQueue;
  private readonly batcher: Batcher;
  /** Decoded clips allowed to wait for the backbone. */
  private readonly roomLimit: number;
  private readonly windowSize: number;
  private readonly heartbeat: NodeJS.Timeout;
  /** Cache misses being embedded, by cache key: a second name of the same file (a link) waits for the first. */
  private readonly embedding = new Map<string, Promise<VideoFrames>>();
  private readonly onAbort = (): void => this.controller.abort(this.outer!.reason);

  constructor(
    private readonly embedder: FrameEmbedder,
    private readonly stages: IngestStages,
    private readonly options: LocalRunnerOptions,
    private readonly tracker: ProgressTracker,
    private readonly outer: AbortSignal | undefined,
    private readonly decoder: () => Promise<VideoDecoder>,
  ) {
    const { concurrency, batch, inferenceConcurrency } = options;
    outer?.addEventListener('abort', this.onAbort, { once: true });
    this.decodeQueue = new PQueue({ concurrency });
    this.batcher = new Batcher(embedder, {
      batch,
      maxInFlight: inferenceConcurrency,
      frames: options.sampling.frames,
      size: options.size,
      signal: this.signal,
      onBatch: (n) => {
        tracker.framesEmbedded += n;
      },
    });
    this.roomLimit = Math.max(batch * (inferenceConcurrency + 1), 2);
    this.windowSize = concurrency + batch * inferenceConcurrency + 2;
    // A heartbeat, so progress gets through while one long video decodes (the renderer throttles it).
    this.heartbeat = setInterval(() => tracker.emit(), 1000).unref();
  }

  size(): number {
    return this.windowSize;
  }

  /** Decoding is gated again inside, by the queue's size. */
  async admit(): Promise<void> {
    await this.decodeQueue.onSizeLessThan(this.options.concurrency);
  }

  start(item: EmbedItem): Slot {
    const slot: Slot = { promise: undefined as never };
    const progress = this.tracker.video();
    slot.promise = this.one(item, progress).then((outcome) => {
      slot.settled = outcome;
      if (outcome.kind === 'ok') this.tracker.succeed(outcome.value, progress);
      else if (outcome.kind === 'error' && !isAbortLike(outcome.record))
        this.tracker.fail(outcome.record.error.code, progress);
      this.tracker.emit();
      return outcome;
    });
    return slot;
  }

  settled(slot: Slot): Promise<Outcome> {
    return slot.promise;
  }

  take(slot: Slot): Result {
    const outcome = slot.settled!;
    if (outcome.kind === 'fatal') throw outcome.error;
    return outcome.kind === 'ok' ? outcome.value : outcome.record;
  }

  async cleanup(rest: readonly Slot[], done: boolean): Promise<void> {
    if (!done && !this.signal.aborted)
      this.controller.abort(new DOMException('The iteration was stopped', 'AbortError'));
    this.batcher.fail(this.signal.reason ?? new Error('runner closed'));
    this.outer?.removeEventListener('abort', this.onAbort);
    if (!done) {
      // Wait (briefly) for running tasks, and so their children, to end.
      await Promise.race([
        Promise.allSettled(rest.map((slot) => slot.promise)).then(() => this.decodeQueue.onIdle()),
        delay(1500),
      ]);
    }
    clearInterval(this.heartbeat);
    this.tracker.emit(true, done);
  }

  /** One video, never throws: an outcome. */
  private async one(item: EmbedItem, progress: VideoProgress): Promise<Outcome> {
    const { store } = this.options;
    const path = item.path;
    // A manifest row may name a span of the video: every sampling then covers only it.
    const sampling = samplingForSpan(this.options.sampling, item);
    try {
      this.signal.throwIfAborted();
      const key = store ? await this.cacheKey(path, sampling) : undefined;
      const hit = store && key ? await this.fromCache(store, key, path, sampling.frames) : undefined;
      if (hit) return { kind: 'ok', value: hit };
      const pending = key ? this.embedding.get(key) : undefined;
      if (pending) {
        const value = await pending;
        this.tracker.cacheHits += 1;
        return { kind: 'ok', value: { ...value, path, cached: true } };
      }
      const work = this.embedVideo(path, sampling, progress).then(async (value) => {
        const { clips, frames, dim, embeddings, backend, decoder } = value;
        if (store && key) await store.set(key, { clips, frames, dim, embeddings, backend, decoder });
        return value;
      });
      if (key) {
        this.embedding.set(key, work);
        work.catch(() => undefined).finally(() => this.embedding.delete(key));
      }
      return { kind: 'ok', value: await work };
    } catch (error) {
      return this.failure(path, error);
    }
  }

  /** The cache key of `path`; a URL has none (what is behind it may change): it is never cached. */
  private async cacheKey(path: string, sampling: Sampling): Promise<string | undefined> {
    if (isUrl(path)) return undefined;
    const identity = await fileIdentity(path);
    const { size, fit } = this.options;
    const seek = this.options.seek ?? 'exact';
    // Keyframe mode returns other frames. The decoder is in the key: that both give the same
    // exact frames is not proven yet (see CacheKeyParts.decoder).
    const decoder = decoderOf(this.options).name;
    return cacheKey({
      identity,
      sampling,
      size,
      fit,
      backboneId: this.embedder.backboneId,
      decoder,
      ...(seek === 'keyframe' ? { seek } : {}),
    });
  }

  /** The stored embeddings of `key`, when they have this run's T and D. */
  private async fromCache(
    store: EmbeddingStore,
    key: string,
    path: string,
    T: number,
  ): Promise<VideoFrames | undefined> {
    const hit = await store.get(key);
    if (!hit || hit.frames !== T || hit.dim !== this.embedder.dim) return undefined;
    this.tracker.cacheHits += 1;
    return {
      path,
      clips: hit.clips,
      frames: T,
      dim: hit.dim,
      embeddings: hit.embeddings,
      cached: true,
      backend: hit.backend,
      ...(hit.decoder ? { decoder: hit.decoder } : {}),
    };
  }

  /**
   * A cache miss: decodes the video under the queue, a part of the plan at a time, and sends
   * each part's clips to the batcher as it comes.
   */
  private async embedVideo(path: string, sampling: Sampling, progress: VideoProgress): Promise<VideoFrames> {
    // The model is needed, so start loading it while this video decodes.
    this.embedder.prepare?.();
    const T = sampling.frames;
    const D = this.embedder.dim;
    const part = this.options.clipsPerDecode ?? 16;
    const video: VideoPlan = { plans: [], progress };
    let embeddings = new Float32Array(0); // [clips, T, D], sized once the plan is known
    const layout: CachedClip[] = [];
    const embedded: Array<Promise<void>> = [];
    let decoder: string | undefined; // the one that gave the frames (libav hands a raw stream to the CLI)
    try {
      for (let first = 0; first === 0 || first < video.plans.length; first += part) {
        const clips = await this.decodeQueue.add(() => this.decodePart(path, sampling, video, first, part));
        if (embeddings.length === 0) embeddings = new Float32Array(video.plans.length * T * D);
        decoder ??= clips[0]?.decoder;
        clips.forEach((clip, j) => {
          const offset = (first + j) * T * D;
          const done = this.batcher.embed(clip.data, clip.mask).then((out) => {
            embeddings.set(out, offset); // [T, D]
            this.tracker.clip(progress, T);
            this.tracker.emit();
          });
          done.catch(() => undefined); // awaited below; a later part's failure must not leave it unhandled
          embedded.push(done);
          layout.push(clipLayout(clip));
        });
      }
    } finally {
      await video.opened?.close();
    }
    await Promise.all(embedded);
    this.tracker.videosDecoded += 1;
    return {
      path,
      clips: layout,
      frames: T,
      dim: D,
      embeddings,
      cached: false,
      backend: this.embedder.backend?.name ?? this.embedder.engine.name,
      decoder: decoder ?? decoderOf(this.options).name,
    };
  }

  /**
   * One decode task: it probes and plans the video at its first part, decodes the clips
   * `[first, first + part)`, and holds its queue slot until they fit in the batcher, so at most
   * `roomLimit` decoded clips wait for the backbone. The queue only stops *waiting* on abort; the
   * task itself must stop, so it checks the signal and hands it to every child it starts.
   */
  private async decodePart(
    path: string,
    sampling: Sampling,
    video: VideoPlan,
    first: number,
    part: number,
  ): Promise<FrameClip[]> {
    const signal = this.signal;
    signal.throwIfAborted();
    const { size, fit, timeoutMs, threads } = this.options;
    const seek = this.options.seek ?? 'exact';
    if (!video.opened) {
      // --timeout bounds every child of this video, ffprobe too.
      video.opened = await this.stages.open(await this.decoder(), path, {
        signal,
        timeoutMs: timeoutMs ?? 30_000,
      });
      const { metadata } = video.opened;
      checkPlanSize(path, clipCount(metadata, sampling), sampling.frames, this.embedder.dim, sampling);
      video.plans = this.stages.planClips(metadata, sampling);
      this.tracker.plan(video.progress, video.plans.length);
    }
    const plans = video.plans.slice(first, first + part);
    const decoded = await video.opened.decode(plans, {
      size,
      fit,
      signal,
      timeoutMs,
      threads,
      seek,
      strategy: 'auto',
    });
    await this.batcher.waitForRoom(this.roomLimit);
    return decoded;
  }

  /** What a failed video gives: an error record where it is one of those, else the run ends. */
  private failure(path: string, error: unknown): Outcome {
    if (this.signal.aborted)
      return { kind: 'error', record: { path, error: { code: 'ABORTED', message: 'aborted' } } };
    const code = recordableCode(error);
    if (!code) return { kind: 'fatal', error };
    debug('runner: %s failed with %s: %s', path, code, (error as Error).message);
    return { kind: 'error', record: { path, error: { code, message: (error as Error).message } } };
  }
}

/** A video opened (its metadata) and planned, once its first part is decoding. */
interface VideoPlan {
  opened?: OpenVideo;
  plans: ClipPlan[];
  /** Its clips counted as they finish (progress). */
  progress: VideoProgress;
}

/** What the cache and the records keep of a clip: everything but its frames. */
function clipLayout(clip: FrameClip): CachedClip {
  return {
    index: clip.index,
    start: clip.start,
    end: clip.end,
    timestamps: clip.timestamps,
    mask: clip.mask,
    ...(clip.warnings?.length ? { warnings: clip.warnings } : {}),
  };
}

/** A `TOO_LARGE` error, before anything is allocated, when a plan's embeddings would pass `MAX_VIDEO_VALUES`. */
function checkPlanSize(path: string, clips: number, T: number, D: number, sampling: Sampling): void {
  if (clips * T * D <= MAX_VIDEO_VALUES) return;
  const mib = (values: number): string => `${Math.round((values * 4) / 2 ** 20).toLocaleString('en-US')} MiB`;
  const how =
    sampling.kind === 'fps'
      ? `a lower rate (--sampling fps:<n>) or a stride that skips frames (fps:<n>/<stride>)`
      : `a longer stride (--sampling window:<length>/<stride>)`;
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
    throw new UsageError(
      `\`size\` ${size} does not match the backbone's input size ${inputSize}; frames must be ${inputSize}x${inputSize}`,
    );
  }
  return inputSize;
}
