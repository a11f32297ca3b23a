import { describe, expect, it } from 'vitest';
import {
  calibration,
  clipMetrics,
  confusionMatrix,
  coverageAt,
  precisionRecall,
  editScore,
  frameMetrics,
  levenshtein,
  rankOf,
  segmentMatches,
  segmentsOf,
  type ScoredSample,
} from '../../src/evaluation/metrics.js';

const abc = ['a', 'b', 'c'];
const A = 0;
const B = 1;
const C = 2;

// Five samples worked out on paper (see the comments for the ties).
const five: ScoredSample[] = [
  { truth: A, probs: [0.7, 0.2, 0.1] }, // pred a
  { truth: A, probs: [0.4, 0.4, 0.2] }, // tie a/b: pred a (first index)
  { truth: B, probs: [0.5, 0.5, 0.0] }, // tie a/b: pred a, wrong; b ranks 2nd
  { truth: B, probs: [0.1, 0.8, 0.1] }, // pred b
  { truth: A, probs: [0.2, 0.3, 0.5] }, // pred c, never true; a ranks 3rd
];

describe('rankOf()', () => {
  it('rankOf() puts a tied class after the tied classes with a lower index', () => {
    expect(rankOf([0.5, 0.5, 0], 0)).toBe(0);
    expect(rankOf([0.5, 0.5, 0], 1)).toBe(1);
    expect(rankOf([0.2, 0.3, 0.5], 0)).toBe(2);
  });
});

describe('clipMetrics()', () => {
  const m = clipMetrics(five, { labels: abc, topK: 2 });

  it('counts a confusion matrix with ties resolved to the first class', () => {
    expect(m.confusion).toEqual({
      labels: abc,
      matrix: [
        [2, 0, 1],
        [1, 1, 0],
        [0, 0, 0],
      ],
    });
    expect(m.count).toBe(5);
    expect(m.correct).toBe(3);
    expect(m.top1).toBeCloseTo(0.6, 12);
  });

  it('gives per-class scores, with 0/0 as 0 for a class that never occurs', () => {
    const [a, b, c] = m.perClass;
    expect(a).toMatchObject({ label: 'a', support: 3, predicted: 3 });
    expect(a.precision).toBeCloseTo(2 / 3, 12);
    expect(a.recall).toBeCloseTo(2 / 3, 12);
    expect(a.f1).toBeCloseTo(2 / 3, 12);
    expect(b).toMatchObject({ label: 'b', precision: 1, recall: 0.5, support: 2, predicted: 1 });
    expect(b.f1).toBeCloseTo(2 / 3, 12);
    // c is predicted once but never true: precision 0/1, recall 0/0 := 0.
    expect(c).toEqual({ label: 'c', precision: 0, recall: 0, f1: 0, support: 0, predicted: 1 });
  });

  it('averages macro-F1 over true-or-predicted classes, mean class accuracy over true classes', () => {
    expect(m.macroF1).toBeCloseTo((2 / 3 + 2 / 3 + 0) / 3, 12);
    expect(m.weightedF1).toBeCloseTo((3 * (2 / 3) + 2 * (2 / 3)) / 5, 12);
    expect(m.meanClassAccuracy).toBeCloseTo((2 / 3 + 1 / 2) / 2, 12);
  });

  it('computes top-k with ties against the true class', () => {
    expect(m.topK).toEqual({ k: 2, accuracy: 0.8 });
    // Not reported when there are k classes or fewer.
    expect(clipMetrics(five, { labels: abc, topK: 3 }).topK).toBeNull();
    expect(clipMetrics(five, { labels: abc }).topK).toBeNull();
  });

  it('computes log loss and a 10-bin ECE', () => {
    expect(m.logLoss).toBeCloseTo(
      -(Math.log(0.7) + Math.log(0.4) + Math.log(0.5) + Math.log(0.8) + Math.log(0.2)) / 5,
      12,
    );
    // bins: 0.4 ok (3), 0.5 wrong x2 (4), 0.7 ok (6), 0.8 ok (7)
    expect(m.ece).toBeCloseTo((0.6 + 2 * 0.5 + 0.3 + 0.2) / 5, 12);
    expect(m.calibration.map((b) => b.count)).toEqual([0, 0, 0, 1, 2, 0, 1, 1, 0, 0]);
    expect(m.calibration[4]).toMatchObject({ lo: 0.4, hi: 0.5, count: 2, accuracy: 0, confidence: 0.5 });
  });

  it('clips the log loss of a zero probability', () => {
    expect(clipMetrics([{ truth: B, probs: [1, 0] }], { labels: ['a', 'b'] }).logLoss).toBeCloseTo(
      -Math.log(1e-15),
      9,
    );
  });

  it('puts a confidence on a bin edge in the lower bin despite floating point (0.3 -> (0.2, 0.3])', () => {
    const { bins } = calibration([{ truth: 0, probs: [0.3, 0.3, 0.2, 0.2] }]);
    expect(bins[2].count).toBe(1);
    expect(calibration([{ truth: 0, probs: [1, 0] }]).bins[9].count).toBe(1);
  });

  it('handles a single class present: the absent class does not lower macro-F1', () => {
    const s = clipMetrics(
      [
        { truth: A, probs: [0.9, 0.1] },
        { truth: A, probs: [0.6, 0.4] },
      ],
      { labels: ['a', 'b'] },
    );
    expect(s.top1).toBe(1);
    expect(s.macroF1).toBe(1);
    expect(s.meanClassAccuracy).toBe(1);
    expect(s.weightedF1).toBe(1);
    expect(s.perClass[1]).toEqual({ label: 'b', precision: 0, recall: 0, f1: 0, support: 0, predicted: 0 });
  });

  it('handles a model with one label', () => {
    const s = clipMetrics([{ truth: 0, probs: [1] }], { labels: ['only'] });
    expect(s).toMatchObject({ top1: 1, macroF1: 1, meanClassAccuracy: 1, topK: null, ece: 0 });
  });

  it('handles everything wrong: F1 0 everywhere, not NaN', () => {
    const s = clipMetrics(
      [
        { truth: A, probs: [0, 1] },
        { truth: B, probs: [1, 0] },
      ],
      { labels: ['a', 'b'] },
    );
    expect(s.top1).toBe(0);
    expect(s.macroF1).toBe(0);
    expect(s.weightedF1).toBe(0);
    expect(s.ece).toBe(1);
  });

  it.each([
    [[], { labels: abc }, /Expected at least one sample for `samples`/],
    [
      [{ truth: 3, probs: [1, 0, 0] }],
      { labels: abc },
      /Expected a class index in \[0, 2\] for `samples\[0\]\.truth` but received 3/,
    ],
    [
      [{ truth: 0, probs: [1, 0] }],
      { labels: abc },
      /Expected 3 for `samples\[0\]\.probs\.length` but received 2/,
    ],
    [five, { labels: abc, topK: 0 }, /Expected a positive integer for `topK` but received 0/],
  ])('clipMetrics() rejects bad input %#', (samples, options, message) => {
    expect(() => clipMetrics(samples as ScoredSample[], options)).toThrow(message);
  });
});

describe('confusionMatrix()', () => {
  it('keeps rows and columns for classes that never appear', () => {
    expect(confusionMatrix([0, 0, 2], [0, 2, 2], ['x', 'y', 'z']).matrix).toEqual([
      [1, 0, 1],
      [0, 0, 0],
      [0, 0, 1],
    ]);
  });
});

describe('segments, edit score and F1@k', () => {
  it('segmentsOf() gives maximal runs over [start, end)', () => {
    expect(segmentsOf([A, A, B, A])).toEqual([
      { label: A, start: 0, end: 2 },
      { label: B, start: 2, end: 3 },
      { label: A, start: 3, end: 4 },
    ]);
    expect(segmentsOf([])).toEqual([]);
  });

  it('levenshtein() counts unit edits', () => {
    expect(levenshtein([...'kitten'], [...'sitting'])).toBe(3);
    expect(levenshtein([], [1, 2])).toBe(2);
  });

  it('editScore() normalises by the longer segment sequence', () => {
    // truth segments A B C, pred segments A B C A: one insertion over 4.
    expect(editScore([A, A, B, B, B, C, A], [A, A, A, B, B, C, C])).toBeCloseTo(0.75, 12);
    // Same segment order, different boundaries: a perfect edit score.
    expect(editScore([A, A, A, A, B, B], [A, B, B, B, B, B])).toBe(1);
    // pred A B A vs truth A: 2 deletions over 3.
    expect(editScore([A, A, B, A], [A, A, A, A])).toBeCloseTo(1 / 3, 12);
    expect(editScore([], [])).toBe(1);
  });

  it('segmentMatches() thresholds the IoU', () => {
    const truth = [...Array(10).fill(A), ...Array(10).fill(B)];
    const pred = [...Array(4).fill(A), ...Array(16).fill(B)];
    // pred A [0,4) vs A [0,10): IoU 0.4; pred B [4,20) vs B [10,20): IoU 0.625.
    expect(segmentMatches(pred, truth, 0.1)).toEqual({ tp: 2, fp: 0, fn: 0 });
    expect(segmentMatches(pred, truth, 0.4)).toEqual({ tp: 2, fp: 0, fn: 0 });
    expect(segmentMatches(pred, truth, 0.5)).toEqual({ tp: 1, fp: 1, fn: 1 });
    expect(segmentMatches(pred, truth, 0.7)).toEqual({ tp: 0, fp: 2, fn: 2 });
  });

  it('segmentMatches() never matches a true segment twice', () => {
    // truth A x10; pred A [0,5) IoU .5 (TP), B (FP, no B), A [6,10) IoU .4 but A is used (FP).
    expect(segmentMatches([...Array(5).fill(A), B, ...Array(4).fill(A)], Array(10).fill(A), 0.1)).toEqual({
      tp: 1,
      fp: 2,
      fn: 0,
    });
  });

  it('frameMetrics() sums F1 counts over videos and averages edit over videos', () => {
    const v1 = {
      truth: [...Array(10).fill(A), ...Array(10).fill(B)],
      pred: [...Array(4).fill(A), ...Array(16).fill(B)],
    };
    const v2 = { truth: Array(10).fill(A), pred: [...Array(5).fill(A), B, ...Array(4).fill(A)] };
    const m = frameMetrics([v1, v2], { labels: ['a', 'b'] });
    expect(m.videos).toBe(2);
    expect(m.frames).toBe(30);
    expect(m.correct).toBe(14 + 9);
    expect(m.frameAccuracy).toBeCloseTo(23 / 30, 12);
    expect(m.edit).toBeCloseTo((1 + 1 / 3) / 2, 12);
    // @0.1 and @0.25: tp 3, fp 2, fn 0 -> P 3/5, R 1, F1 0.75.
    expect(m.f1At['0.1']).toBeCloseTo(0.75, 12);
    expect(m.f1At['0.25']).toBeCloseTo(0.75, 12);
    // @0.5: v1 tp1 fp1 fn1, v2 tp1 fp2 fn0 -> tp 2, fp 3, fn 1: P 2/5, R 2/3, F1 0.5.
    expect(m.f1At['0.5']).toBeCloseTo(0.5, 12);
    expect(Object.keys(m.f1At)).toEqual(['0.1', '0.25', '0.5']);
    // frames: a true 20, predicted 4+9=13 correct 13; b true 10, predicted 16+1, correct 10.
    expect(m.perClass[0]).toMatchObject({ support: 20, predicted: 13, precision: 1 });
    expect(m.perClass[0].recall).toBeCloseTo(13 / 20, 12);
    expect(m.perClass[1]).toMatchObject({ support: 10, predicted: 17, recall: 1 });
  });

  it('frameMetrics() gives a perfect score to a perfect tagging', () => {
    const m = frameMetrics([{ truth: [A, A, B, C], pred: [A, A, B, C] }], { labels: abc });
    expect(m).toMatchObject({
      frameAccuracy: 1,
      edit: 1,
      macroF1: 1,
      f1At: { '0.1': 1, '0.25': 1, '0.5': 1 },
    });
  });
});

describe('coverageAt()', () => {
  // Ten decisions by hand: score, and whether the top label is right.
  const table = [
    [0.95, true],
    [0.9, true],
    [0.85, false],
    [0.8, true],
    [0.7, true],
    [0.65, false],
    [0.6, true],
    [0.55, false],
    [0.5, true],
    [0.4, false],
  ].map(([score, correct]) => ({ score: score as number, correct: correct as boolean }));

  it.each([
    // threshold, answered (score >= threshold), right among them
    [0, 10, 6],
    [0.6, 7, 5],
    [0.8, 4, 3],
    [0.85, 3, 2],
    [0.96, 0, 0],
  ])('at %s answers %i of 10, %i right: unknown counts as wrong', (threshold, answered, right) => {
    expect(coverageAt(table, threshold)).toEqual({
      threshold,
      coverage: answered / 10,
      accuracy: right / 10,
      answeredAccuracy: answered ? right / answered : null,
    });
  });
});

describe('precisionRecall()', () => {
  it('gives each class its one-vs-rest curve and average precision, worked out by hand', () => {
    // Class a's scores, highest first: 0.9 (a), 0.8 (b), 0.7 (a), 0.6 (b).
    const samples = [
      { truth: A, probs: [0.9, 0.1, 0] },
      { truth: B, probs: [0.8, 0.2, 0] },
      { truth: A, probs: [0.7, 0.3, 0] },
      { truth: B, probs: [0.6, 0.4, 0] },
    ];
    const [a, , c] = precisionRecall(samples, abc);
    expect(a.points).toEqual([
      { recall: 0.5, precision: 1 },
      { recall: 0.5, precision: 0.5 },
      { recall: 1, precision: 2 / 3 },
      { recall: 1, precision: 0.5 },
    ]);
    expect(a.ap).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12);
    expect(a.positives).toBe(2);
    expect(c).toMatchObject({ positives: 0, ap: null });
  });

  it('takes tied scores together', () => {
    const [a] = precisionRecall(
      [
        { truth: A, probs: [0.5, 0.5] },
        { truth: B, probs: [0.5, 0.5] },
      ],
      ['a', 'b'],
    );
    expect(a.points).toEqual([{ recall: 1, precision: 0.5 }]);
    expect(a.ap).toBe(0.5);
  });
});
