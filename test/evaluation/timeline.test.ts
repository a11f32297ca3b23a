import { describe, expect, it } from 'vitest';
import { segmentsFromFrames, timeShares, type TimelineFrame } from '../../src/evaluation/timeline.js';

const labels = ['a', 'b'];
/** A frame at `t` whose probability of 'a' is `pa`, labelled by its argmax. */
const frame = (t: number, pa: number, label = pa >= 0.5 ? 'a' : 'b'): TimelineFrame => ({
  t,
  label,
  score: Math.max(pa, 1 - pa),
  probs: [pa, 1 - pa],
});

describe('segmentsFromFrames()', () => {
  it('runs of one label: each ends where the next starts, the first starts at the video start, the last ends at its end', () => {
    const frames = [frame(0.5, 0.9), frame(1, 0.7), frame(1.5, 0.2), frame(2, 0.4)];
    expect(segmentsFromFrames(frames, { labels, start: 0, end: 2.4 })).toEqual([
      { start: 0, end: 1.5, label: 'a', score: 0.8 }, // mean of 0.9 and 0.7
      { start: 1.5, end: 2.4, label: 'b', score: expect.closeTo(0.7, 9) }, // mean of 0.8 and 0.6
    ]);
    expect(segmentsFromFrames([], { labels, start: 0, end: 1 })).toEqual([]);
  });

  it('minSegment merges the shortest short run into its longer neighbour, and the score is of the merged label', () => {
    // a [0, 2) b [2, 2.5) a [2.5, 3) b [3, 6): b at 2 (0.5 s) and a at 2.5 (0.5 s) are short.
    const frames = [
      frame(0, 0.9),
      frame(1, 0.9),
      frame(2, 0.3),
      frame(2.5, 0.6),
      frame(3, 0.1),
      frame(4, 0.1),
      frame(5, 0.1),
    ];
    expect(
      segmentsFromFrames(frames, { labels, start: 0, end: 6 }).map((s) => [s.start, s.end, s.label]),
    ).toEqual([
      [0, 2, 'a'],
      [2, 2.5, 'b'],
      [2.5, 3, 'a'],
      [3, 6, 'b'],
    ]);
    // The first short run (b, tied with a at 0.5 s) joins a [0, 2), the longer neighbour; then a [0, 3) is whole.
    const merged = segmentsFromFrames(frames, { labels, start: 0, end: 6, minSegment: 1 });
    expect(merged.map((s) => [s.start, s.end, s.label])).toEqual([
      [0, 3, 'a'],
      [3, 6, 'b'],
    ]);
    expect(merged[0].score).toBeCloseTo((0.9 + 0.9 + 0.3 + 0.6) / 4, 9); // P(a) over the run's four frames
    // Nothing is shorter than 0.5 s; and a video of one run keeps it however long minSegment is.
    expect(segmentsFromFrames(frames, { labels, start: 0, end: 6, minSegment: 0.5 })).toHaveLength(4);
    expect(
      segmentsFromFrames(frames, { labels, start: 0, end: 6, minSegment: 100 }).map((s) => s.label),
    ).toEqual(['b']);
  });

  it('merges a run of no time (one time sampled twice by overlapping windows) into its neighbour', () => {
    // b at 1 s then a at 1 s again: b's run would be [1, 1).
    const frames = [frame(0, 0.9), frame(1, 0.3), frame(1, 0.8), frame(2, 0.7)];
    expect(
      segmentsFromFrames(frames, { labels, start: 0, end: 3 }).map((s) => [s.start, s.end, s.label]),
    ).toEqual([[0, 3, 'a']]);
  });

  it("an `unknown` run's score is the mean of its frames' top scores", () => {
    const frames = [frame(0, 0.9), frame(1, 0.55, 'unknown'), frame(2, 0.4, 'unknown')];
    expect(segmentsFromFrames(frames, { labels, start: 0, end: 3 })[1]).toEqual({
      start: 1,
      end: 3,
      label: 'unknown',
      score: expect.closeTo(0.575, 9),
    });
  });
});

describe('timeShares()', () => {
  it('gives each label its share of the time, largest first', () => {
    const segs = [
      { start: 0, end: 1, label: 'a', score: 1 },
      { start: 1, end: 4, label: 'b', score: 1 },
      { start: 4, end: 5, label: 'a', score: 1 },
    ];
    expect(timeShares(segs)).toEqual([
      { label: 'b', score: 0.6 },
      { label: 'a', score: 0.4 },
    ]);
  });
});
