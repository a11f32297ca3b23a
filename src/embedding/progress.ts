/**
 * Progress of a run, as plain events. The library never prints; the CLI renders these.
 */

/** A snapshot of a run's progress. */
export interface ProgressEvent {
  /** Videos finished (embedded, from the cache, or failed) and the total to do in this run. */
  videosDone: number;
  videosTotal: number;
  /** Videos skipped because they were already in the output (`resume`). */
  videosSkipped: number;
  /**
   * Clips and frames embedded so far (from the cache or the backbone), counted as each clip
   * finishes: a long video's clips count before the video is done. The clips of a video that
   * then fails are taken back out.
   */
  clipsDone: number;
  framesDone: number;
  /** Videos whose clip plan is known (planned, from the cache, or failed), and the clips those plans hold. */
  videosPlanned: number;
  clipsPlanned: number;
  /** Videos whose frames were decoded by ffmpeg in this run (cache misses). */
  videosDecoded: number;
  /** Frames that went through the backbone in this run. */
  framesEmbedded: number;
  /** Videos served from the embedding cache. */
  cacheHits: number;
  /** Videos that failed, in all and by error code. */
  failures: number;
  failuresByCode: Record<string, number>;
  /** Videos that came out, but with warnings (frames that did not decode and were repeated, ffmpeg's decode errors); their records list them. */
  videosWithWarnings: number;
  /** Milliseconds since the run started. */
  elapsedMs: number;
  /** Rates over the whole run so far. */
  videosPerSecond: number;
  clipsPerSecond: number;
  framesPerSecond: number;
  /**
   * Estimated milliseconds left, or null before the first clip (or video) finishes: the time
   * per clip so far, times the clips left, where each video not yet planned is counted at the
   * mean of the plans known.
   */
  etaMs: number | null;
  /** True for the last event of a run. */
  final: boolean;
  /**
   * A run across machines (`remote`, `--redis`): the workers connected to the queue, how
   * long Redis has not answered (0 while it does), and, when the next result in input order
   * is a job whose worker stopped answering, that job and at most how long before another
   * worker's stalled check hands it on (`--stall-timeout`).
   */
  queue?: QueueProgress;
}

/** The queue part of a progress event. */
export interface QueueProgress {
  workers: number;
  unreachableMs: number;
  waitingOn?: { path: string; jobId: string; worker: string; handedOnInMs: number };
}

/** One video's counts, while it runs: its planned clips and those embedded so far. */
export interface VideoProgress {
  planned: boolean;
  clips: number;
  frames: number;
}

/** A callback that receives progress events. */
export type ProgressCallback = (event: ProgressEvent) => void;

/** Counts a run and builds events; `emit` is throttled except for the final one. */
export class ProgressTracker {
  private readonly started = performance.now();
  private lastEmit = 0;
  videosTotal = 0;
  videosSkipped = 0;
  videosDone = 0;
  clipsDone = 0;
  framesDone = 0;
  videosDecoded = 0;
  framesEmbedded = 0;
  cacheHits = 0;
  failures = 0;
  videosWithWarnings = 0;
  videosPlanned = 0;
  clipsPlanned = 0;
  queue?: QueueProgress;
  readonly failuresByCode: Record<string, number> = {};

  constructor(
    private readonly callback?: ProgressCallback,
    private readonly intervalMs = 200,
  ) {}

  /** The entries to run: those `skip` names are left out and counted; the first event goes out. */
  select<I extends { path: string }>(entries: readonly I[], skip?: (item: I) => boolean): readonly I[] {
    const items = skip ? entries.filter((e) => !skip(e)) : entries;
    this.videosSkipped += entries.length - items.length;
    this.videosTotal += items.length;
    this.emit(true);
    return items;
  }

  /** A video starts: the handle its clips are counted on ({@link plan}, {@link clip}). */
  video(): VideoProgress {
    return { planned: false, clips: 0, frames: 0 };
  }

  /** `video`'s plan is known: `clips` clips. */
  plan(video: VideoProgress, clips: number): void {
    if (video.planned) return;
    video.planned = true;
    this.videosPlanned += 1;
    this.clipsPlanned += clips;
  }

  /** One clip of `video` (of `frames` frames) is embedded. */
  clip(video: VideoProgress, frames: number): void {
    video.clips += 1;
    video.frames += frames;
    this.clipsDone += 1;
    this.framesDone += frames;
  }

  /** Counts a video that came out, with its clips and frames (those `progress` counted already are not counted again). */
  succeed(
    video: { clips: ReadonlyArray<{ warnings?: string[] }>; frames: number },
    progress: VideoProgress = this.video(),
  ): void {
    this.plan(progress, video.clips.length);
    this.videosDone += 1;
    this.clipsDone += video.clips.length - progress.clips;
    this.framesDone += video.clips.length * video.frames - progress.frames;
    if (video.clips.some((c) => c.warnings?.length)) this.videosWithWarnings += 1;
  }

  /** Counts a video that failed; the clips `progress` counted are taken back out. */
  fail(code: string, progress: VideoProgress = this.video()): void {
    this.plan(progress, 0);
    this.clipsDone -= progress.clips;
    this.framesDone -= progress.frames;
    this.failures += 1;
    this.videosDone += 1;
    this.failuresByCode[code] = (this.failuresByCode[code] ?? 0) + 1;
  }

  /** Milliseconds left (see `ProgressEvent.etaMs`). */
  private eta(elapsedMs: number): number | null {
    if (this.clipsDone > 0 && this.videosPlanned > 0) {
      const unplanned = Math.max(0, this.videosTotal - this.videosPlanned);
      const clipsExpected = this.clipsPlanned + (unplanned * this.clipsPlanned) / this.videosPlanned;
      return (elapsedMs / this.clipsDone) * Math.max(0, clipsExpected - this.clipsDone);
    }
    return this.videosDone > 0 ? (elapsedMs / this.videosDone) * (this.videosTotal - this.videosDone) : null;
  }

  snapshot(final = false): ProgressEvent {
    const elapsedMs = performance.now() - this.started;
    const seconds = Math.max(elapsedMs / 1000, 1e-6);
    const etaMs = this.eta(elapsedMs);
    return {
      videosDone: this.videosDone,
      videosTotal: this.videosTotal,
      videosSkipped: this.videosSkipped,
      clipsDone: this.clipsDone,
      framesDone: this.framesDone,
      videosPlanned: this.videosPlanned,
      clipsPlanned: this.clipsPlanned,
      videosDecoded: this.videosDecoded,
      framesEmbedded: this.framesEmbedded,
      cacheHits: this.cacheHits,
      failures: this.failures,
      failuresByCode: { ...this.failuresByCode },
      videosWithWarnings: this.videosWithWarnings,
      elapsedMs,
      videosPerSecond: this.videosDone / seconds,
      clipsPerSecond: this.clipsDone / seconds,
      framesPerSecond: this.framesDone / seconds,
      etaMs: final ? 0 : etaMs,
      final,
      ...(this.queue
        ? {
            queue: {
              ...this.queue,
              ...(this.queue.waitingOn ? { waitingOn: { ...this.queue.waitingOn } } : {}),
            },
          }
        : {}),
    };
  }

  /** Sends an event if the interval has passed (always when `force`). */
  emit(force = false, final = false): void {
    if (!this.callback) return;
    const now = performance.now();
    if (!force && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    this.callback(this.snapshot(final));
  }
}
