/**
 * `BackboneRunner`: what every `EmbedRunner` says about its backbone, read from the
 * `FrameEmbedder` it was made with, and its closing. The local runner and the remote runner
 * extend it; each adds its `run()`.
 */
import type { FrameEmbedder } from './frame-embedder.js';
import type { EmbedItem, EmbedRunner, ErrorRecord, RunOptions, VideoFrames } from './runner.js';

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
  get backend(): { name: string; reason: string } {
    return this.embedder.backend;
  }

  abstract run<I extends EmbedItem>(items: readonly I[], options?: RunOptions): AsyncGenerator<[I, VideoFrames | ErrorRecord]>;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsEmbedder) await this.embedder.dispose();
  }

  /** Throws once `close()` was called. */
  protected checkOpen(): void {
    if (this.closed) throw new Error('The runner is closed');
  }
}
