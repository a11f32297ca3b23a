import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  majorityLabel,
  manifestText,
  partSizes,
  splitDataset,
  writeSplit,
  type LabelledVideo,
} from '../../src/evaluation/split.js';
import { tempDir } from '../helpers.js';

function dataset(root: string, perClass: Record<string, number>): LabelledVideo[] {
  const out: LabelledVideo[] = [];
  for (const [label, n] of Object.entries(perClass)) {
    for (let i = 0; i < n; i++)
      out.push({ path: join(root, label, `v${String(i).padStart(3, '0')}.mp4`), label });
  }
  return out;
}

const ids = (vs: LabelledVideo[]): string[] => vs.map((v) => v.path);

describe('partSizes()', () => {
  it.each([
    [10, 0.2, 0, { test: 2, val: 0 }],
    [10, 0.2, 0.1, { test: 2, val: 1 }],
    [1, 0.2, 0.1, { test: 0, val: 0 }], // a lone video stays in train
    [2, 0.2, 0.1, { test: 1, val: 0 }], // at least one test, one train
    [3, 0.2, 0.1, { test: 1, val: 1 }],
    [4, 0.9, 0, { test: 3, val: 0 }], // train always keeps one
    [7, 0, 0.3, { test: 0, val: 2 }],
  ])('partSizes(%i, %f, %f)', (n, test, val, expected) => {
    expect(partSizes(n, test, val)).toEqual(expected);
  });
});

describe('splitDataset()', () => {
  const videos = dataset('/data/set', { cat: 20, dog: 10, eel: 3 });

  it('stratifies every class and loses no video', () => {
    const s = splitDataset(videos, { test: 0.2, val: 0.1, seed: 7 });
    expect(s.counts).toEqual({
      cat: { train: 14, val: 2, test: 4 },
      dog: { train: 7, val: 1, test: 2 },
      eel: { train: 1, val: 1, test: 1 },
    });
    const all = [...ids(s.train), ...ids(s.val), ...ids(s.test)].sort();
    expect(all).toEqual(ids(videos).sort());
    expect(new Set(all).size).toBe(videos.length);
    expect(s.test.filter((v) => v.label === 'cat')).toHaveLength(4);
  });

  it('gives the same split for the same seed, whatever the input order', () => {
    const a = splitDataset(videos, { seed: 3 });
    const b = splitDataset([...videos].reverse(), { seed: 3 });
    expect(b).toEqual(a);
    const c = splitDataset(videos, { seed: 4 });
    expect(ids(c.test)).not.toEqual(ids(a.test));
  });

  it('gives the same split when the dataset folder moves', () => {
    const moved = dataset('/elsewhere/deeper/set', { cat: 20, dog: 10, eel: 3 });
    const a = splitDataset(videos, { seed: 5, val: 0.1 });
    const b = splitDataset(moved, { seed: 5, val: 0.1 });
    const rel = (vs: LabelledVideo[]): string[] => vs.map((v) => v.path.split('/').slice(-2).join('/'));
    expect(rel(b.test)).toEqual(rel(a.test));
    expect(rel(b.val)).toEqual(rel(a.val));
  });

  it('moves at most one existing video per boundary when a video is added', () => {
    const base = dataset('/data/set', { cat: 40 });
    for (let seed = 0; seed < 20; seed++) {
      const before = splitDataset(base, { seed, test: 0.2, val: 0.1, root: '/data/set' });
      const after = splitDataset([...base, { path: '/data/set/cat/new.mp4', label: 'cat' }], {
        seed,
        test: 0.2,
        val: 0.1,
        root: '/data/set',
      });
      const where = (s: typeof before): Map<string, string> =>
        new Map([
          ...s.train.map((v) => [v.path, 'train']),
          ...s.val.map((v) => [v.path, 'val']),
          ...s.test.map((v) => [v.path, 'test']),
        ] as Array<[string, string]>);
      const w0 = where(before);
      const w1 = where(after);
      const moved = [...w0].filter(([p, part]) => w1.get(p) !== part);
      // 41 videos: round(8.2) = 8 test, round(4.1) = 4 val, as with 40, so at most the videos
      // at the two boundaries shift by one rank.
      expect(moved.length).toBeLessThanOrEqual(2);
    }
  });

  it.each([
    [{ test: 1 }, /Expected a number >= 0 and < 1 for `test` but received 1/],
    [{ test: 0.6, val: 0.5 }, /`test` and `val` conflict: their sum must be below 1/],
    [{ seed: -1 }, /Expected a non-negative integer for `seed` but received -1/],
    [{ val: 'x' }, /Expected a number >= 0 and < 1 for `val` but received 'x'/],
  ])('rejects bad options %#', (options, message) => {
    expect(() => splitDataset(videos, options as never)).toThrow(message);
  });
});

describe('manifests', () => {
  it('manifestText() writes paths relative to the manifest, quoted when needed', () => {
    const text = manifestText('/data/splits/train.csv', [
      { path: '/data/set/a/x.mp4', label: 'a' },
      { path: '/data/set/b/with, comma "q".mp4', label: 'b c' },
    ]);
    expect(text).toBe('path,label\n../set/a/x.mp4,a\n"../set/b/with, comma ""q"".mp4",b c\n');
  });

  it('writeSplit() writes train, val, test and split.json', async () => {
    const out = tempDir('fw-split-');
    const s = splitDataset(dataset(join(out, 'set'), { a: 5, b: 5 }), { seed: 1, val: 0.2 });
    const w = await writeSplit(s, { out: join(out, 'splits') });
    const test = (await readFile(w.files.test, 'utf8')).trim().split('\n');
    expect(test[0]).toBe('path,label');
    expect(test.slice(1)).toEqual(
      s.test.map((v) => `../set/${v.label}/${v.path.split('/').pop()},${v.label}`),
    );
    expect((await readFile(w.files.val!, 'utf8')).trim().split('\n')).toHaveLength(1 + 2);
    const summary = JSON.parse(await readFile(w.files.summary, 'utf8'));
    expect(summary).toMatchObject({
      seed: 1,
      fractions: { test: 0.2, val: 0.2 },
      totals: { train: 6, val: 2, test: 2 },
    });
  });
});

describe('splitDataset() of a frame dataset', () => {
  // Eight two-scene videos: a [0, 3) then b [3, 4) (majority a), or b [0, 3) then a [3, 4) (majority b).
  const videos: LabelledVideo[] = Array.from({ length: 8 }, (_, i) => {
    const [x, y] = i % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
    const segments = [
      { start: 0, end: 3, label: x },
      { start: 3, end: 4, label: y },
    ];
    return { path: `/data/v${i}.mp4`, label: majorityLabel(segments)!, segments };
  });

  it('keeps videos whole, stratified by majority label, and counts seconds per label and part', () => {
    expect(majorityLabel(videos[0].segments!)).toBe('a');
    const split = splitDataset(videos, { test: 0.25, seed: 2 });
    expect(split.counts).toEqual({ a: { train: 3, val: 0, test: 1 }, b: { train: 3, val: 0, test: 1 } });
    // Test holds one video of each majority: 3 + 1 seconds of each label.
    expect(split.seconds).toEqual({ a: { train: 12, val: 0, test: 4 }, b: { train: 12, val: 0, test: 4 } });
    expect(split.test.every((v) => v.segments!.length === 2)).toBe(true);
    expect(splitDataset(videos, { test: 0.25, seed: 2 })).toEqual(split);
  });

  it('writes JSONL manifests with the segments, and split.json with the seconds', async () => {
    const out = join(tempDir('fw-split-frames-'), 'split');
    const { files } = await writeSplit(splitDataset(videos, { test: 0.25, seed: 2 }), { out });
    expect(files.test.endsWith('test.jsonl')).toBe(true);
    const rows = (await readFile(files.test, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(2);
    expect(rows[0].segments).toHaveLength(2);
    const summary = JSON.parse(await readFile(files.summary, 'utf8'));
    expect(summary).toMatchObject({
      schema: 'framewise.split/1',
      stratify: expect.stringMatching(/^majority label/),
      seconds: { a: { test: 4 } },
    });
  });
});
