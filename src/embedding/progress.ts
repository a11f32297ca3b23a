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
  /** Clips and frames embedded so far (from the cache or the backbone). */
  clipsDone: number;
  framesDone: number;
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
  /** Estimated milliseconds left, or null before the first video finishes. */
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

  /** Counts a video that came out, with its clips and frames. */
  succeed(video: { clips: ReadonlyArray<{ warnings?: string[] }>; frames: number }): void {
    this.videosDone += 1;
    this.clipsDone += video.clips.length;
    this.framesDone += video.clips.length * video.frames;
    if (video.clips.some((c) => c.warnings?.length)) this.videosWithWarnings += 1;
  }

  fail(code: string): void {
    this.failures += 1;
    this.videosDone += 1;
    this.failuresByCode[code] = (this.failuresByCode[code] ?? 0) + 1;
  }

  snapshot(final = false): ProgressEvent {
    const elapsedMs = performance.now() - this.started;
    const seconds = Math.max(elapsedMs / 1000, 1e-6);
    const remaining = this.videosTotal - this.videosDone;
    const etaMs = this.videosDone > 0 ? (elapsedMs / this.videosDone) * remaining : null;
    return {
      videosDone: this.videosDone,
      videosTotal: this.videosTotal,
      videosSkipped: this.videosSkipped,
      clipsDone: this.clipsDone,
      framesDone: this.framesDone,
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
      ...(this.queue ? { queue: { ...this.queue, ...(this.queue.waitingOn ? { waitingOn: { ...this.queue.waitingOn } } : {}) } } : {}),
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
