/**
 * Stratified, stable train/val/test splits of a labelled dataset, written as manifests.
 *
 * How a video is assigned (documented in docs/evaluation.md):
 * 1. Each video gets a key: `sha256(seed + "\0" + label + "\0" + path relative to the dataset
 *    root)`, read as a number in [0, 1). The key depends only on the seed and the video itself,
 *    never on the other videos or on the order they were found in.
 * 2. Within each class, videos are sorted by key. The first `nTest` go to test, the next
 *    `nVal` to val, the rest to train, with `nTest = round(n * test)` and
 *    `nVal = round(n * val)`, except that a class with at least 2 videos gives at least one
 *    to test (when `test > 0`) and always keeps at least one for train; val takes at least one
 *    when `val > 0` and at least 2 videos are left after test.
 *
 * So the same seed gives the same split on any machine, the class proportions hold in every
 * part, and adding a video to a class moves at most one existing video of that class across
 * each boundary (its rank shifts by at most one), instead of reshuffling everything.
 *
 * A frame dataset (videos with `segments`) is split the same way, videos whole: a video's
 * class is its majority label, the label covering the most of its time. Not its label set:
 * with k labels there are up to 2^k - 1 sets, most of them held by a video or two, and a class
 * of one video never reaches test, so rare combinations would all train; a set also says
 * nothing of how long each label lasts. Majority labels keep few, large classes, so each
 * label's time is shared out near the fractions. The split then counts seconds per label and
 * part, and the manifests are JSONL with the segments.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { csvText, OUTPUT_DIRS, replaceDir } from '../fs.js';
import type { Segment } from '../ingest/types.js';
import { timeShares } from './timeline.js';
import {
  checkSignal,
  conflict,
  invalid,
  isPlainObject,
  LIMITS,
  nonEmptyString,
  nonNegativeInteger,
  numberInRange,
} from '../validate.js';

/** One video with its class label (for a frame dataset, its majority label) and, for a frame dataset, its segments. */
export interface LabelledVideo {
  path: string;
  label: string;
  segments?: Segment[];
}

/** The label covering the most of `segments`' time (the earliest on a tie); undefined without segments. */
export function majorityLabel(segments: readonly Segment[]): string | undefined {
  return timeShares(segments)[0]?.label;
}

export interface SplitOptions {
  /** Fraction of each class that goes to the test set, in [0, 1). @default 0.2 */
  test?: number;
  /** Fraction of each class that goes to the validation set, in [0, 1). @default 0 */
  val?: number;
  /** Seed of the assignment; the same seed gives the same split. @default 0 */
  seed?: number;
  /**
   * Folder that the hashed paths are made relative to, so a dataset keeps its split when it is
   * moved. @default the deepest folder that holds every video
   */
  root?: string;
}

export interface ClassSplitCounts {
  train: number;
  val: number;
  test: number;
}

export interface DatasetSplit {
  train: LabelledVideo[];
  val: LabelledVideo[];
  test: LabelledVideo[];
  /** Per class (sorted by label): how many videos went where. */
  counts: Record<string, ClassSplitCounts>;
  /** Frame datasets: per label (sorted), the seconds of its segments in each part. */
  seconds?: Record<string, ClassSplitCounts>;
  seed: number;
  fractions: { test: number; val: number };
}

interface Resolved {
  test: number;
  val: number;
  seed: number;
  root: string | undefined;
}

function resolveOptions(options: SplitOptions | undefined): Resolved {
  if (options !== undefined && !isPlainObject(options)) throw invalid('options', 'an object', options);
  const o = options ?? {};
  const test = numberInRange('test', o.test ?? 0.2, 0, 1, { exclusiveMax: true });
  const val = numberInRange('val', o.val ?? 0, 0, 1, { exclusiveMax: true });
  if (test + val >= 1) throw conflict('test', 'val', `their sum must be below 1 but is ${test + val}`);
  const seed = nonNegativeInteger('seed', o.seed ?? 0, LIMITS.seed);
  const root = o.root === undefined ? undefined : nonEmptyString('root', o.root);
  return { test, val, seed, root };
}

/** The deepest folder that contains every path. */
export function commonRoot(paths: readonly string[]): string {
  if (paths.length === 0) return process.cwd();
  let parts = dirname(resolve(paths[0])).split(sep);
  for (const p of paths.slice(1)) {
    const q = dirname(resolve(p)).split(sep);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(sep) || sep;
}

/** A number in [0, 1) from sha256 of the seed, label and relative path. */
export function splitKey(seed: number, label: string, relPath: string): number {
  const h = createHash('sha256')
    .update(`${seed}\0${label}\0${relPath.split(sep).join('/')}`)
    .digest();
  // 48 bits are exact in a double.
  return h.readUIntBE(0, 6) / 2 ** 48;
}

/** How many of `n` videos go to test and to val (see the module comment). */
export function partSizes(n: number, test: number, val: number): { test: number; val: number } {
  let nTest = 0;
  if (test > 0 && n >= 2) nTest = Math.min(n - 1, Math.max(1, Math.round(n * test)));
  let nVal = 0;
  const left = n - nTest;
  if (val > 0 && left >= 2) nVal = Math.min(left - 1, Math.max(1, Math.round(n * val)));
  return { test: nTest, val: nVal };
}

/** Assigns each video to train, val or test: stratified by label, stable under additions. */
export function splitDataset(videos: readonly LabelledVideo[], options?: SplitOptions): DatasetSplit {
  const o = resolveOptions(options);
  if (!Array.isArray(videos)) throw invalid('videos', 'an array', videos);
  const root = o.root ?? commonRoot(videos.map((v) => v.path));
  const byLabel = new Map<string, Array<{ video: LabelledVideo; key: number; rel: string }>>();
  videos.forEach((v, i) => {
    nonEmptyString(`videos[${i}].path`, v?.path);
    nonEmptyString(`videos[${i}].label`, v.label);
    const rel = relative(root, resolve(v.path));
    const list = byLabel.get(v.label) ?? [];
    list.push({ video: v, key: splitKey(o.seed, v.label, rel), rel });
    byLabel.set(v.label, list);
  });
  const split: DatasetSplit = {
    train: [],
    val: [],
    test: [],
    counts: {},
    seed: o.seed,
    fractions: { test: o.test, val: o.val },
  };
  for (const label of [...byLabel.keys()].sort()) {
    // The relative path breaks (astronomically unlikely) key ties, so the order is total.
    const list = byLabel
      .get(label)!
      .sort((a, b) => a.key - b.key || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
    const sizes = partSizes(list.length, o.test, o.val);
    list.forEach((item, rank) => {
      const part = rank < sizes.test ? 'test' : rank < sizes.test + sizes.val ? 'val' : 'train';
      split[part].push(item.video);
    });
    split.counts[label] = { train: list.length - sizes.test - sizes.val, val: sizes.val, test: sizes.test };
  }
  const order = (a: LabelledVideo, b: LabelledVideo): number =>
    a.label < b.label ? -1 : a.label > b.label ? 1 : a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  split.train.sort(order);
  split.val.sort(order);
  split.test.sort(order);
  if (videos.some((v) => v.segments)) split.seconds = secondsPerLabel(split);
  return split;
}

function secondsPerLabel(split: DatasetSplit): Record<string, ClassSplitCounts> {
  const out: Record<string, ClassSplitCounts> = {};
  for (const part of ['train', 'val', 'test'] as const) {
    for (const v of split[part]) {
      for (const s of v.segments ?? []) {
        out[s.label] ??= { train: 0, val: 0, test: 0 };
        out[s.label][part] += s.end - s.start;
      }
    }
  }
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return Object.fromEntries(
    Object.keys(out)
      .sort()
      .map((l) => [l, { train: round(out[l].train), val: round(out[l].val), test: round(out[l].test) }]),
  );
}

/**
 * A `path,label` CSV whose paths are relative to the manifest's folder (POSIX separators); for
 * a frame dataset (`segments`), JSONL rows `{path, segments}`.
 */
export function manifestText(file: string, videos: readonly LabelledVideo[]): string {
  const base = dirname(resolve(file));
  const rel = (v: LabelledVideo): string =>
    relative(base, isAbsolute(v.path) ? v.path : resolve(v.path))
      .split(sep)
      .join('/');
  if (videos.some((v) => v.segments))
    return videos.map((v) => `${JSON.stringify({ path: rel(v), segments: v.segments ?? [] })}\n`).join('');
  return csvText([['path', 'label'], ...videos.map((v) => [rel(v), v.label])]);
}

export interface WriteSplitOptions {
  /** Folder for `train.csv`, `val.csv` (when there is a val part), `test.csv` (`.jsonl` for a frame dataset) and `split.json`. */
  out: string;
  signal?: AbortSignal;
}

export interface WrittenSplit {
  split: DatasetSplit;
  files: { train: string; val?: string; test: string; summary: string };
}

/**
 * Writes the manifests of a split. `split.json` records the seed, the fractions and the
 * per-class counts, so the split can be reproduced and checked.
 */
export async function writeSplit(split: DatasetSplit, options: WriteSplitOptions): Promise<WrittenSplit> {
  if (!isPlainObject(options)) throw invalid('options', 'an object', options);
  const out = nonEmptyString('out', options.out);
  const signal = checkSignal('signal', options.signal);
  const ext = split.seconds ? 'jsonl' : 'csv';
  const files: WrittenSplit['files'] = {
    train: join(out, `train.${ext}`),
    test: join(out, `test.${ext}`),
    summary: join(out, 'split.json'),
  };
  if (split.fractions.val > 0) files.val = join(out, `val.${ext}`);
  const summary = {
    [OUTPUT_DIRS.split.field]: OUTPUT_DIRS.split.value,
    seed: split.seed,
    fractions: split.fractions,
    method: 'sha256(seed, label, relative path) ranks within each class',
    ...(split.seconds
      ? { stratify: "majority label: the label covering the most of each video's time" }
      : {}),
    counts: split.counts,
    ...(split.seconds ? { seconds: split.seconds } : {}),
    totals: { train: split.train.length, val: split.val.length, test: split.test.length },
  };
  // The folder is written whole, so a split with other fractions leaves no stale val.csv.
  await replaceDir(out, OUTPUT_DIRS.split, async (tmp) => {
    for (const part of ['train', 'val', 'test'] as const) {
      const file = files[part];
      if (!file) continue;
      signal?.throwIfAborted();
      await writeFile(join(tmp, basename(file)), manifestText(file, split[part]));
    }
    await writeFile(join(tmp, basename(files.summary)), `${JSON.stringify(summary, null, 2)}\n`);
  });
  return { split, files };
}
