/**
 * chunkClips() and joinClips() on plans written by hand: cuts only where planned times lie
 * far apart, chunks of about equal count, equal times together, and frames joined back in
 * place (data, timestamps, masks, warnings).
 */
import { describe, expect, it } from 'vitest';
import { chunkClips, joinClips, type ClipChunk } from '../../src/ingest/chunk-plan.js';
import type { ClipPlan, FrameClip } from '../../src/ingest/types.js';

function plan(index: number, timestamps: number[]): ClipPlan {
  return {
    index,
    start: timestamps[0],
    end: timestamps.at(-1)! + 1,
    timestamps,
    mask: timestamps.map(() => true),
  };
}

/** What a decoder would give for `chunk`: a 1x1 frame per time whose red byte is the time. */
function decode(chunk: ClipChunk): FrameClip[] {
  return chunk.plans.map((p) => ({
    index: p.index,
    start: p.start,
    end: p.end,
    data: Uint8Array.from(p.timestamps.flatMap((t) => [t, 0, 0])),
    shape: [p.timestamps.length, 1, 1, 3],
    timestamps: p.timestamps.map((t) => t + 0.01),
    mask: p.mask,
    warnings: [`w${p.timestamps[0]}`],
  }));
}

const times = (chunks: ClipChunk[]): number[][] => chunks.map((c) => c.plans.flatMap((p) => p.timestamps));

describe('chunkClips()', () => {
  it('cuts 16 frames 10 s apart into equal chunks', () => {
    const plans = [
      plan(
        0,
        Array.from({ length: 16 }, (_, i) => 10 * i),
      ),
    ];
    expect(times(chunkClips(plans, 2)).map((t) => t.length)).toEqual([8, 8]);
    expect(times(chunkClips(plans, 4)).map((t) => t.length)).toEqual([4, 4, 4, 4]);
    expect(times(chunkClips(plans, 3)).map((t) => t.length)).toEqual([5, 6, 5]);
  });

  it('cuts only where frames lie at least minGap apart, and keeps one chunk when nowhere', () => {
    // Two bursts of frames 0.5 s apart, 100 s between them.
    const plans = [plan(0, [0, 0.5, 1, 1.5, 2, 2.5, 100, 100.5])];
    expect(times(chunkClips(plans, 2))).toEqual([
      [0, 0.5, 1, 1.5, 2, 2.5],
      [100, 100.5],
    ]);
    expect(times(chunkClips(plans, 4))).toHaveLength(2);
    expect(chunkClips([plan(0, [0, 1, 2, 3])], 4)).toHaveLength(1);
    expect(chunkClips(plans, 1)).toHaveLength(1);
    expect(chunkClips([...plans, { ...plan(1, [0]), timestamps: [], mask: [] }], 2)).toHaveLength(1);
  });

  it('splits clips across chunks, keeping equal times together and each frame’s place', () => {
    const plans = [plan(0, [0, 10, 20]), plan(1, [20, 30, 40, 50])];
    const chunks = chunkClips(plans, 2);
    expect(times(chunks)).toEqual([
      [0, 10, 20, 20],
      [30, 40, 50],
    ]);
    expect(chunks[0].from).toEqual([
      { clip: 0, frames: [0, 1, 2] },
      { clip: 1, frames: [0] },
    ]);
    expect(chunks[1].from).toEqual([{ clip: 1, frames: [1, 2, 3] }]);
  });
});

describe('joinClips()', () => {
  it('puts every frame back in its clip and place, with its timestamp, mask and warnings', () => {
    const plans = [plan(0, [0, 10, 20]), plan(1, [20, 30, 40, 50])];
    plans[1].mask[3] = false;
    const chunks = chunkClips(plans, 3);
    expect(chunks.length).toBeGreaterThan(1);
    const clips = joinClips(plans, chunks, chunks.map(decode));
    expect(clips.map((c) => [...c.data].filter((_, i) => i % 3 === 0))).toEqual([
      [0, 10, 20],
      [20, 30, 40, 50],
    ]);
    expect(clips.map((c) => c.shape)).toEqual([
      [3, 1, 1, 3],
      [4, 1, 1, 3],
    ]);
    expect(clips[1].timestamps).toEqual([20.01, 30.01, 40.01, 50.01]);
    expect(clips[1].mask).toEqual([true, true, true, false]);
    expect(clips[0].warnings).toEqual(
      chunks.filter((c) => c.from.some((f) => f.clip === 0)).map((c) => `w${c.plans[0].timestamps[0]}`),
    );
    expect(clips.map((c) => c.index)).toEqual([0, 1]);
  });
});
