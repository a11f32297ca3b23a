/**
 * `BackboneRunner`: what the local and the remote runner share. Both say what they know of
 * the backbone from the `FrameEmbedder` they were made with, close the same way, and run the
 * same way: the items not skipped, through an ordered window (see ordered-window.ts) whose
 * hooks each runner supplies.
 */
import type { FrameEmbedder } from './frame-embedder.js';
import { orderedWindow, type WindowHooks } from './ordered-window.js';
import { ProgressTracker } from './progress.js';
import type { EmbedItem, EmbedRunner, ErrorRecord, RunOptions, VideoFrames } from './runner.js';

type Result = VideoFrames | ErrorRecord;

export abstract class BackboneRunner implements EmbedRunner {
  private closed = false;

  constructor(
    protected readonly embedder: FrameEmbedder,
    /** Frame side S. */
    readonly size: number,
    /** Dispose the embedder on `close()`. */
    private readonly ownsEmbedder: boolean,
  ) {}

  get backboneId(): string {
    return this.embedder.backboneId;
  }
  get dim(): number {
    return this.embedder.dim;
  }
  get backbone() {
    return this.embedder.backbone;
  }
  get engine(): { name: string; reason: string } {
    return this.embedder.engine;
  }
  get backend(): { name: string; reason: string } | undefined {
    return this.embedder.backend;
  }

  /**
   * Embeds `entries` in order. Yields `[item, VideoFrames | ErrorRecord]`. On abort, yields
   * nothing more and throws `signal.reason`.
   */
  async *run<I extends EmbedItem>(
    entries: readonly I[],
    options: RunOptions = {},
  ): AsyncGenerator<[I, Result]> {
    if (this.closed) throw new Error('The runner is closed');
    const { signal, onProgress, skip } = options;
    signal?.throwIfAborted();
    const tracker = new ProgressTracker(onProgress);
    const items = tracker.select(entries, skip);
    yield* orderedWindow(items, this.window<I>(tracker, signal));
  }

  /** The hooks of one run's window; `tracker` counts its progress. */
  protected abstract window<I extends EmbedItem>(
    tracker: ProgressTracker,
    signal: AbortSignal | undefined,
  ): WindowHooks<I, unknown, Result>;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsEmbedder) await this.embedder.dispose();
  }
}
