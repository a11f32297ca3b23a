/**
 * chunkPlan() on packet lists written by hand, as decode-plan.test.ts writes them: the plan's
 * runs grouped into contiguous chunks of balanced cost, each starting at a keyframe, together
 * exactly the plan's runs (so the frames are one decoder's).
 */
import { describe, expect, it } from 'vitest';
import { chunkPlan } from '../../src/ingest/chunk-plan.js';
import type { PacketEntry } from '../../src/ingest/decode-plan.js';

/** "type+pts" words in decode order (1 s a frame): `I0` a keyframe at pts 0; dts counts up. */
function packets(text: string): PacketEntry[] {
  return text
    .trim()
    .split(/\s+/)
    .map((word, i) => ({ key: word[0] === 'I', pts: Number(word.slice(1)), dts: i - 2 }));
}

/** `gops` closed GOPs of 9 frames with two B-frames between references (x264-like), in decode order. */
function closed(gops: number): PacketEntry[] {
  const gop = (s: number): string =>
    `I${s} P${s + 3} B${s + 1} B${s + 2} P${s + 6} B${s + 4} B${s + 5} P${s + 8} B${s + 7}`;
  return packets(Array.from({ length: gops }, (_, g) => gop(9 * g)).join(' '));
}

describe('chunkPlan()', () => {
  it('groups one run a GOP into two chunks of equal cost, each from its keyframe', () => {
    const list = closed(4);
    // The frame at 4.5 s is B5 (7th packet of GOP 0): each run is 7 packets, from its keyframe.
    const { plan, chunks } = chunkPlan(list, [4.5, 13.5, 22.5, 31.5], 2);
    expect(plan.runs.map((r) => [r.first, r.end])).toEqual([
      [0, 7],
      [9, 16],
      [18, 25],
      [27, 34],
    ]);
    expect(chunks.map(({ first, end, cost, targets }) => ({ first, end, cost, targets }))).toEqual([
      { first: 0, end: 16, cost: 14, targets: [0, 1] },
      { first: 18, end: 34, cost: 14, targets: [2, 3] },
    ]);
    for (const chunk of chunks) expect(list[chunk.first].key).toBe(true);
  });

  it('balances the largest chunk, not the number of runs: a costly run stays alone', () => {
    // GOP 0 decoded to P8 (8 packets), the three others to their first B-frame (3 each).
    const { chunks } = chunkPlan(closed(4), [7.5, 9.5, 18.5, 27.5], 2);
    expect(chunks.map((c) => c.cost)).toEqual([8, 9]);
    expect(chunks.map((c) => c.targets)).toEqual([[0], [1, 2, 3]]);
  });

  it('makes one chunk for one decoder, and no more chunks than runs', () => {
    const list = closed(3);
    const targets = [1.5, 10.5, 19.5];
    expect(chunkPlan(list, targets, 1).chunks).toHaveLength(1);
    expect(chunkPlan(list, targets, 8).chunks.map((c) => c.runs.length)).toEqual([1, 1, 1]);
    // Targets in one GOP are one run: nothing to split.
    expect(chunkPlan(list, [0.5, 2.5, 4.5], 4).chunks).toHaveLength(1);
  });

  it('keeps small plans whole: no chunk under minCost packets', () => {
    const targets = [4.5, 13.5, 22.5, 31.5]; // 4 runs of 7 packets: 28
    expect(chunkPlan(closed(4), targets, 4, { minCost: 15 }).chunks).toHaveLength(1);
    expect(chunkPlan(closed(4), targets, 4, { minCost: 14 }).chunks.map((c) => c.cost)).toEqual([14, 14]);
    expect(chunkPlan(closed(4), targets, 4).chunks).toHaveLength(4);
  });

  it('an open GOP: a leading frame decodes from the keyframe before, so its chunk starts there', () => {
    // GOP 1 is open: B7 and B8 show before I9 and refer to P6.
    const list = packets('I0 P3 B1 B2 P6 B4 B5  I9 B7 B8 P12 B10 B11  I15 P18 B16 B17 P21 B19 B20');
    const { plan, chunks } = chunkPlan(list, [7.5, 16.5], 2);
    expect(chunks).toHaveLength(2);
    expect(chunks[0].first).toBe(0); // B8 needs P6: from I0
    expect(chunks[1].first).toBe(13);
    expect(chunks.flatMap((c) => c.runs)).toEqual(plan.runs);
  });

  it.each([
    [[0.2, 3.3, 9.9, 10.1, 17, 25.5, 26, 34.9], 3],
    [[1, 2, 3, 11, 12, 20, 29, 30, 31, 32, 33], 2],
    [[5, 14, 23, 32], 5],
  ])(
    "for targets %j on %d decoders: the chunks are the plan's runs, in order, each from a keyframe",
    (targets, decoders) => {
      const list = closed(4);
      const { plan, chunks } = chunkPlan(list, targets, decoders);
      expect(chunks.length).toBeLessThanOrEqual(decoders);
      expect(chunks.flatMap((c) => c.runs)).toEqual(plan.runs);
      expect(chunks.flatMap((c) => c.targets).sort((a, b) => a - b)).toEqual(
        plan.runs.flatMap((r) => r.targets).sort((a, b) => a - b),
      );
      for (const c of chunks) {
        expect(list[c.first].key).toBe(true);
        expect(c.cost).toBe(c.runs.reduce((s, r) => s + r.end - r.first, 0));
      }
    },
  );

  it('rejects a decoder count that is not a positive integer', () => {
    expect(() => chunkPlan(closed(1), [1], 0)).toThrow(
      /Expected a positive integer for `decoders` but received 0/,
    );
  });
});
