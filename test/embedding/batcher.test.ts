/**
 * The batcher's own logic (packing, greedy batches, in-flight limit, back-pressure, failure)
 * over a small arithmetic FrameEmbedder, so each clip's output can be checked exactly and
 * each call's timing controlled. The batcher over the real backbone is in local-runner.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/embedding/batcher.js';
import type { FrameEmbedder } from '../../src/embedding/frame-embedder.js';

const T = 2;
const S = 2;
const CLIP = T * S * S * 3;

/** D = 1: each frame's embedding is the mean of its bytes. Calls wait until released. */
class MeanEmbedder implements FrameEmbedder {
  readonly backboneId = 'mean';
  readonly inputSize = S;
  readonly dim = 1;
  readonly engine = { name: 'test', reason: 'arithmetic' };
  readonly backbone = {
    id: 'mean',
    name: 'mean',
    inputSize: S,
    dim: 1,
    normalize: '0..1' as const,
    spec: 'mean',
  };
  readonly calls: number[][] = [];
  running = 0;
  maxRunning = 0;
  failNext: Error | undefined;
  private gates: Array<() => void> = [];

  async embedClips(data: Uint8Array, shape: [number, number, number, number, 3]): Promise<Float32Array> {
    this.calls.push([...shape]);
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await new Promise<void>((resolve) => this.gates.push(resolve));
    this.running -= 1;
    if (this.failNext) throw this.failNext;
    const frame = S * S * 3;
    const out = new Float32Array(shape[0] * shape[1]);
    for (let f = 0; f < out.length; f++)
      out[f] = data.subarray(f * frame, (f + 1) * frame).reduce((a, b) => a + b, 0) / frame;
    return out;
  }

  /** Lets every waiting call finish, then lets the batcher start the next ones. */
  async release(): Promise<void> {
    for (const open of this.gates.splice(0)) open();
    await new Promise((resolve) => setImmediate(resolve));
  }

  async dispose(): Promise<void> {}
}

const clip = (a: number, b: number): Uint8Array => {
  const data = new Uint8Array(CLIP);
  data.fill(a, 0, CLIP / 2);
  data.fill(b, CLIP / 2);
  return data;
};

describe('Batcher', () => {
  it("embed(data, mask): a masked frame that repeats an earlier frame of its clip is not sent to the backbone; it gets that frame's row", async () => {
    const embedder = new MeanEmbedder();
    const batcher = new Batcher(embedder, { batch: 3, maxInFlight: 1, frames: T, size: S });
    // A keyframe repeat (masked, same bytes), a masked frame with its own bytes, and a plain clip.
    const results = [
      batcher.embed(clip(5, 5), [true, false]),
      batcher.embed(clip(1, 2), [true, false]),
      batcher.embed(clip(7, 7)),
    ];
    await embedder.release(); // the first clip goes out alone
    await embedder.release();
    expect(await Promise.all(results)).toEqual([
      new Float32Array([5, 5]),
      new Float32Array([1, 2]),
      new Float32Array([7, 7]),
    ]);
    // First call: clip 1 alone, 1 distinct frame of 2. Second: clips 2 and 3 have no repeat.
    expect(embedder.calls).toEqual([
      [1, 1, S, S, 3],
      [2, T, S, S, 3],
    ]);
  });

  it('sends the first clip at once, packs those that queue meanwhile, and hands each clip its own rows', async () => {
    const embedder = new MeanEmbedder();
    const batcher = new Batcher(embedder, { batch: 3, maxInFlight: 1, frames: T, size: S });
    const results = [clip(1, 2), clip(3, 4), clip(5, 6), clip(7, 8), clip(9, 10)].map((c) =>
      batcher.embed(c),
    );
    expect(embedder.calls).toEqual([[1, T, S, S, 3]]); // did not wait for a batch to fill
    expect(batcher.pending).toBe(4);
    await embedder.release();
    expect(embedder.calls.map((s) => s[0])).toEqual([1, 3]);
    await embedder.release();
    await embedder.release();
    expect(embedder.calls.map((s) => s[0])).toEqual([1, 3, 1]);
    expect((await Promise.all(results)).map((r) => [...r])).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ]);
    expect(embedder.maxRunning).toBe(1);
  });

  it('keeps at most maxInFlight calls running', async () => {
    const embedder = new MeanEmbedder();
    const batcher = new Batcher(embedder, { batch: 1, maxInFlight: 2, frames: T, size: S });
    const results = Array.from({ length: 5 }, (_, i) => batcher.embed(clip(i, i)));
    expect(embedder.running).toBe(2);
    while (embedder.calls.length < 5 || embedder.running > 0) await embedder.release();
    await Promise.all(results);
    expect(embedder.maxRunning).toBe(2);
  });

  it('waitForRoom() holds a producer until fewer than the limit wait', async () => {
    const embedder = new MeanEmbedder();
    const batcher = new Batcher(embedder, { batch: 2, maxInFlight: 1, frames: T, size: S });
    const results = [1, 2, 3].map((i) => batcher.embed(clip(i, i)));
    let roomy = false;
    const room = batcher.waitForRoom(2).then(() => (roomy = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(roomy).toBe(false); // two wait behind the running call
    await embedder.release();
    await room;
    expect(batcher.pending).toBe(0);
    await embedder.release();
    await Promise.all(results);
  });

  it('rejects a clip of the wrong size without sending it', async () => {
    const embedder = new MeanEmbedder();
    const batcher = new Batcher(embedder, { batch: 2, maxInFlight: 1, frames: T, size: S });
    await expect(batcher.embed(new Uint8Array(CLIP - 1))).rejects.toThrow(
      `must hold ${CLIP} bytes but has ${CLIP - 1}`,
    );
    expect(embedder.calls).toEqual([]);
  });

  it('a failed call rejects the clips in it; the batcher goes on with the next', async () => {
    const embedder = new MeanEmbedder();
    const batcher = new Batcher(embedder, { batch: 1, maxInFlight: 1, frames: T, size: S });
    const first = batcher.embed(clip(1, 1));
    const second = batcher.embed(clip(2, 2));
    embedder.failNext = new Error('backbone broke');
    const failed = expect(first).rejects.toThrow('backbone broke');
    await embedder.release();
    await failed;
    embedder.failNext = undefined;
    await embedder.release();
    expect([...(await second)]).toEqual([2, 2]);
  });

  it('an abort rejects every waiting clip and every later one, and wakes waiting producers', async () => {
    const embedder = new MeanEmbedder();
    const controller = new AbortController();
    const batcher = new Batcher(embedder, {
      batch: 1,
      maxInFlight: 1,
      frames: T,
      size: S,
      signal: controller.signal,
    });
    const running = batcher.embed(clip(1, 1));
    const waiting = batcher.embed(clip(2, 2));
    const room = batcher.waitForRoom(1);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    await expect(room).rejects.toThrow('stop');
    await expect(batcher.embed(clip(3, 3))).rejects.toThrow('stop');
    await embedder.release();
    expect([...(await running)]).toEqual([1, 1]); // the call already sent completes
    expect(embedder.calls).toHaveLength(1);
  });
});
