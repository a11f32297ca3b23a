import { describe, expect, it } from 'vitest';
import { aggregateScores, argmax, topK } from '../../src/evaluation/aggregate.js';

describe('argmax()', () => {
  it('takes the first index on ties', () => {
    expect(argmax([0.4, 0.4, 0.2])).toBe(0);
    expect(argmax([0.1, 0.45, 0.45])).toBe(1);
    expect(argmax(new Float32Array([0, 0, 1]))).toBe(2);
  });
});

describe('topK()', () => {
  it('gives the k best labels, highest first, ties in label order', () => {
    expect(topK([0.2, 0.5, 0.2, 0.1], ['a', 'b', 'c', 'd'], 3)).toEqual([
      { label: 'b', score: 0.5 },
      { label: 'a', score: 0.2 },
      { label: 'c', score: 0.2 },
    ]);
    expect(topK([1], ['only'], 5)).toEqual([{ label: 'only', score: 1 }]);
  });
});

describe('aggregateScores()', () => {
  const clips = [
    [0.2, 0.8],
    [0.6, 0.4],
  ];

  it('averages rows under mean', () => {
    const mean = aggregateScores(clips, 'mean');
    expect(mean).toBeInstanceOf(Float32Array);
    expect(mean[0]).toBeCloseTo(0.4, 6);
    expect(mean[1]).toBeCloseTo(0.6, 6);
  });

  it('takes the per-class max renormalised to sum to 1 under max, keeping the raw max argmax', () => {
    const max = aggregateScores(clips, 'max');
    expect(max[0]).toBeCloseTo(0.6 / 1.4, 6);
    expect(max[1]).toBeCloseTo(0.8 / 1.4, 6);
    expect(argmax(max)).toBe(1);
  });

  it.each(['mean', 'max'] as const)('gives a distribution under %s', (how) => {
    const rows = [
      [0.7, 0.2, 0.1],
      [0.1, 0.1, 0.8],
      [0.3, 0.4, 0.3],
    ];
    const out = aggregateScores(rows, how);
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it('gives one row back as it is, and zeros for no rows', () => {
    expect(Array.from(aggregateScores([[0.25, 0.75]], 'max'))).toEqual([0.25, 0.75]);
    expect(Array.from(aggregateScores([], 'mean', 3))).toEqual([0, 0, 0]);
  });

  it('rejects rows of another length', () => {
    expect(() => aggregateScores([[0.5, 0.5], [1]], 'mean')).toThrow(
      /Expected 2 for `rows\[\]\.length` but received 1/,
    );
  });
});
