/**
 * `framewise split <dataset> --out <dir> --test 0.2 [--val 0.1] --seed N`: stratified, stable
 * train/val/test manifests (CSV `path,label`, paths relative to the manifest; for a frame
 * dataset, JSONL with the segments, videos whole, stratified by majority label). See
 * src/evaluation/split.ts for how videos are assigned.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import { checkOutputDir, OUTPUT_DIRS } from '../output/index.js';
import { intFlag, stringFlag, type Flags } from './common.js';

function fraction(flags: Flags, name: string, fallback: number): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw === true || !Number.isFinite(n) || n < 0 || n >= 1)
    throw new UsageError(
      `Expected a fraction >= 0 and < 1 for \`--${name}\` but received ${JSON.stringify(raw)}`,
    );
  return n;
}

export function register(cli: CAC): void {
  cli
    .command('split <dataset>', 'Write stratified, stable train/val/test manifests of a labelled dataset')
    .option('--out <dir>', 'Folder for train.csv, val.csv, test.csv and split.json')
    .option('--test <fraction>', 'Share of each class for test (default: 0.2)')
    .option('--val <fraction>', 'Share of each class for validation (default: 0)')
    .option('--seed <n>', 'Seed of the assignment (default: 0)')
    .option('--force', 'Replace an existing split folder (only one framewise wrote, or an empty folder)')
    .example('framewise split videos/ --out splits/ --test 0.2 --val 0.1 --seed 1')
    .action((dataset: unknown, flags: Flags) => runSplit(String(dataset), flags));
}

async function runSplit(dataset: string, flags: Flags): Promise<number> {
  const out = stringFlag(flags, 'out');
  if (!out) throw new UsageError('`--out` is required: the folder for the manifests');
  const test = fraction(flags, 'test', 0.2);
  const val = fraction(flags, 'val', 0);
  const seed = intFlag(flags, 'seed', 0) ?? 0;
  await using _lock = await checkOutputDir(out, OUTPUT_DIRS.split, { force: flags.force === true });
  const { discoverInputs, splitDataset, writeSplit } = await import('../index.js');
  const { majorityLabel } = await import('../tasks/index.js');
  const entries = await discoverInputs(dataset);
  const frames = entries.some((e) => e.segments && e.segments.length > 0);
  // A frame dataset's videos are split whole, each in the class of its majority label.
  const labelOf = (e: (typeof entries)[number]): string | undefined =>
    frames ? majorityLabel(e.segments ?? []) : e.label;
  const unlabelled = entries.filter((e) => labelOf(e) === undefined);
  if (unlabelled.length > 0) {
    const what = frames ? 'no segments' : 'no label';
    throw new UsageError(
      `${unlabelled.length} video(s) have ${what}, e.g. ${unlabelled[0].path}: split a folder-per-class tree, a manifest with labels, or a JSONL manifest with "segments"`,
    );
  }
  const s = await stat(dataset);
  const root = s.isDirectory() ? resolve(dataset) : dirname(resolve(dataset));
  const split = splitDataset(
    entries.map((e) => ({
      path: e.path,
      label: labelOf(e)!,
      ...(frames ? { segments: e.segments ?? [] } : {}),
    })),
    { test, val, seed, root },
  );
  const written = await writeSplit(split, { out });
  const rows = split.seconds ? secondsRows(split.seconds) : countRows(split.counts, split);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '),
  );
  const files = [written.files.train, written.files.val, written.files.test].filter(Boolean).join(', ');
  const how = split.seconds
    ? `videos whole, stratified by majority label: ${split.train.length} train, ${split.val.length} val, ${split.test.length} test\n`
    : '';
  process.stdout.write(`${lines.join('\n')}\n${how}wrote ${files} (seed ${seed})\n`);
  return 0;
}

type Counts = Record<string, { train: number; val: number; test: number }>;
type Parts = { train: unknown[]; val: unknown[]; test: unknown[] };

/** Videos per class and part, and the totals. */
function countRows(counts: Counts, split: Parts): string[][] {
  const rows = [
    ['class', 'train', 'val', 'test'],
    ...Object.entries(counts).map(([label, c]) => [label, String(c.train), String(c.val), String(c.test)]),
  ];
  rows.push(['total', String(split.train.length), String(split.val.length), String(split.test.length)]);
  return rows;
}

/** A frame dataset's seconds per label and part, and the totals. */
function secondsRows(seconds: Counts): string[][] {
  const s = (x: number): string => `${x.toFixed(1)}s`;
  const total = { train: 0, val: 0, test: 0 };
  const rows = [['label', 'train', 'val', 'test']];
  for (const [label, c] of Object.entries(seconds)) {
    rows.push([label, s(c.train), s(c.val), s(c.test)]);
    for (const part of ['train', 'val', 'test'] as const) total[part] += c[part];
  }
  rows.push(['total', s(total.train), s(total.val), s(total.test)]);
  return rows;
}
