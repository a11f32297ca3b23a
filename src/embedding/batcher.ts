/**
 * Packs clips from many videos into backbone batches [B, T, S, S, 3] and hands each clip's
 * frame embeddings [T, D] back to whoever queued it. Batches are formed greedily: whenever
 * fewer than `maxInFlight` batches are running, up to `batch` waiting clips go out, so the
 * backbone never idles waiting for a batch to fill, and full batches form by themselves
 * when the backbone is the bottleneck.
 */
import type { FrameEmbedder as FrameEmbedder } from './frame-embedder.js';

interface Waiting {
  data: Uint8Array;
  resolve: (embeddings: Float32Array) => void;
  reject: (error: unknown) => void;
}

export interface BatcherOptions {
  /** Clips per backbone call. */
  batch: number;
  /** Backbone calls running at once (more than one keeps a worker pool busy). */
  maxInFlight: number;
  /** Frames per clip. */
  frames: number;
  /** Frame side in pixels. */
  size: number;
  signal?: AbortSignal;
  /** Called after each backbone call with the number of frames and the milliseconds it took. */
  onBatch?: (frames: number, ms: number) => void;
}

export class Batcher {
  private readonly waiting: Waiting[] = [];
  private readonly roomWaiters: Array<() => void> = [];
  private inFlight = 0;
  private failure: unknown;
  private readonly clipBytes: number;

  constructor(
    private readonly embedder: FrameEmbedder,
    private readonly options: BatcherOptions,
  ) {
    this.clipBytes = options.frames * options.size * options.size * 3;
    options.signal?.addEventListener('abort', () => this.fail(options.signal!.reason), { once: true });
  }

  /** Clips queued and not yet sent to the backbone. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Resolves when fewer than `limit` clips wait, so decoders do not run far ahead. */
  async waitForRoom(limit: number): Promise<void> {
    while (this.waiting.length >= limit && this.failure === undefined) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** Queues one clip, RGB [T, S, S, 3]; resolves with its frame embeddings [T, D]. */
  embed(data: Uint8Array): Promise<Float32Array> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (data.length !== this.clipBytes) {
      return Promise.reject(new RangeError(`batcher: a clip must hold ${this.clipBytes} bytes but has ${data.length}`));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ data, resolve, reject });
      this.pump();
    });
  }

  /** Rejects everything waiting; later calls reject at once. */
  fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (const item of this.waiting.splice(0)) item.reject(error);
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0 && this.failure === undefined) {
      const items = this.waiting.splice(0, this.options.batch);
      for (const wake of this.roomWaiters.splice(0)) wake();
      this.inFlight += 1;
      void this.run(items).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async run(items: Waiting[]): Promise<void> {
    const { frames, size } = this.options;
    const B = items.length;
    let data: Uint8Array;
    let owned = false;
    if (B === 1) {
      data = items[0].data;
    } else {
      owned = true;
      data = new Uint8Array(B * this.clipBytes); // [B, T, S, S, 3]
      items.forEach((item, i) => data.set(item.data, i * this.clipBytes));
    }
    const started = performance.now();
    try {
      const out = await this.embedder.embedClips(data, [B, frames, size, size, 3], { signal: this.options.signal, transfer: owned }); // [B, T, D]
      this.options.onBatch?.(B * frames, performance.now() - started);
      const per = out.length / B; // T * D
      items.forEach((item, i) => item.resolve(out.subarray(i * per, (i + 1) * per)));
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  }
}
