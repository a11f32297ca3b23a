/**
 * Packs clips from many videos into backbone batches [B, T, S, S, 3] and hands each clip's
 * frame embeddings [T, D] back to whoever queued it. Batches are formed greedily: whenever
 * fewer than `maxInFlight` batches are running, up to `batch` waiting clips go out, so the
 * backbone never idles waiting for a batch to fill, and full batches form by themselves
 * when the backbone is the bottleneck.
 *
 * A masked frame that repeats an earlier frame of its clip byte for byte (a keyframe that two
 * planned times snap to, the padding of a short video) is not sent: the batch then goes out
 * as its distinct frames, [N, 1, S, S, 3], and each repeat copies the row of its frame.
 */
import type { FrameEmbedder } from './frame-embedder.js';

interface Waiting {
  data: Uint8Array;
  /** Per frame: the earlier frame of the clip it repeats byte for byte (masked frames only), or -1. */
  repeats: Int32Array | undefined;
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

  /**
   * Queues one clip, RGB [T, S, S, 3]; resolves with its frame embeddings [T, D]. `mask`: the
   * clip's mask; a masked frame equal to an earlier frame of the clip reuses its embedding.
   */
  embed(data: Uint8Array, mask?: readonly boolean[]): Promise<Float32Array> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (data.length !== this.clipBytes) {
      return Promise.reject(
        new RangeError(`batcher: a clip must hold ${this.clipBytes} bytes but has ${data.length}`),
      );
    }
    const repeats = mask ? repeatsOf(data, mask, this.options.size * this.options.size * 3) : undefined;
    return new Promise((resolve, reject) => {
      this.waiting.push({ data, repeats, resolve, reject });
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
    while (
      this.inFlight < this.options.maxInFlight &&
      this.waiting.length > 0 &&
      this.failure === undefined
    ) {
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
    if (items.some((item) => item.repeats)) return this.runDistinct(items);
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
      const out = await this.embedder.embedClips(data, [B, frames, size, size, 3], {
        signal: this.options.signal,
        transfer: owned,
      }); // [B, T, D]
      this.options.onBatch?.(B * frames, performance.now() - started);
      const per = out.length / B; // T * D
      items.forEach((item, i) => item.resolve(out.subarray(i * per, (i + 1) * per)));
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  }

  /** `run` for a batch with repeated frames: only the distinct frames go to the backbone. */
  private async runDistinct(items: Waiting[]): Promise<void> {
    const { frames, size } = this.options;
    const frameBytes = size * size * 3;
    const rows: number[][] = []; // per item, per frame: its row in the backbone's output
    const sent: Uint8Array[] = [];
    for (const item of items) {
      const own: number[] = [];
      for (let k = 0; k < frames; k++) {
        const r = item.repeats?.[k] ?? -1;
        if (r >= 0) {
          own.push(own[r]);
        } else {
          own.push(sent.length);
          sent.push(item.data.subarray(k * frameBytes, (k + 1) * frameBytes));
        }
      }
      rows.push(own);
    }
    const N = sent.length;
    const data = new Uint8Array(N * frameBytes); // [N, 1, S, S, 3]: the distinct frames
    sent.forEach((frame, i) => data.set(frame, i * frameBytes));
    const started = performance.now();
    try {
      const out = await this.embedder.embedClips(data, [N, 1, size, size, 3], {
        signal: this.options.signal,
        transfer: true,
      }); // [N, 1, D]
      this.options.onBatch?.(N, performance.now() - started);
      const D = out.length / N;
      items.forEach((item, i) => {
        const clip = new Float32Array(frames * D); // [T, D]
        rows[i].forEach((row, k) => clip.set(out.subarray(row * D, (row + 1) * D), k * D));
        item.resolve(clip);
      });
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  }
}

/** Per frame of a clip: the earlier frame a masked frame repeats byte for byte, or -1; undefined when none does. */
function repeatsOf(data: Uint8Array, mask: readonly boolean[], frameBytes: number): Int32Array | undefined {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const frame = (k: number): Buffer => buffer.subarray(k * frameBytes, (k + 1) * frameBytes);
  const repeats = new Int32Array(mask.length).fill(-1);
  let any = false;
  for (let k = 1; k < mask.length; k++) {
    if (mask[k]) continue;
    for (let j = k - 1; j >= 0; j--) {
      if (repeats[j] < 0 && frame(j).equals(frame(k))) {
        repeats[k] = j;
        any = true;
        break;
      }
    }
  }
  return any ? repeats : undefined;
}
