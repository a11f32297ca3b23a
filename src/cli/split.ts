/**
 * `framewise split <dataset> --out <dir> --test 0.2 [--val 0.1] --seed N`: stratified, stable
 * train/val/test manifests (CSV `path,label`, paths relative to the manifest). See
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
  if (raw === true || !Number.isFinite(n) || n < 0 || n >= 1) throw new UsageError(`Expected a fraction >= 0 and < 1 for \`--${name}\` but received ${JSON.stringify(raw)}`);
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
  const entries = await discoverInputs(dataset);
  const unlabelled = entries.filter((e) => e.label === undefined);
  if (unlabelled.length > 0) {
    throw new UsageError(`${unlabelled.length} video(s) have no label, e.g. ${unlabelled[0].path}: split a folder-per-class tree or a manifest with labels`);
  }
  const s = await stat(dataset);
  const root = s.isDirectory() ? resolve(dataset) : dirname(resolve(dataset));
  const split = splitDataset(
    entries.map((e) => ({ path: e.path, label: e.label! })),
    { test, val, seed, root },
  );
  const written = await writeSplit(split, { out });
  const rows = [['class', 'train', 'val', 'test'], ...Object.entries(split.counts).map(([label, c]) => [label, String(c.train), String(c.val), String(c.test)])];
  rows.push(['total', String(split.train.length), String(split.val.length), String(split.test.length)]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  const files = [written.files.train, written.files.val, written.files.test].filter(Boolean).join(', ');
  process.stdout.write(`${lines.join('\n')}\nwrote ${files} (seed ${seed})\n`);
  return 0;
}
