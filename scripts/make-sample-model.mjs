#!/usr/bin/env node
/**
 * Trains the small model shipped in samples/model/ from the sample videos, so that the
 * README's first command works at once:
 *
 *   npx framewise classify samples/ --model samples/model
 *
 * Labels come from samples/labels.csv (forward / reversed: the arrow-of-time task). The head
 * is a 12-unit LSTM (about 250 KB of weights) trained on all six clips with a fixed seed.
 * Run `npm run build` first; `npm run make-sample-model` does both.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
if (!existsSync(CLI)) {
  console.error('make-sample-model: dist/ is missing; run `npm run build` first');
  process.exit(2);
}
const cache = process.env.FRAMEWISE_CACHE || mkdtempSync(join(tmpdir(), 'framewise-sample-model-'));
const args = [
  CLI,
  'train',
  join(ROOT, 'samples', 'labels.csv'),
  '--out',
  join(ROOT, 'samples', 'model'),
  '--head',
  'lstm',
  '--units',
  '12',
  '--frames',
  '16',
  '--epochs',
  '60',
  '--val-split',
  '0',
  '--seed',
  '1',
  '--cache',
  cache,
  '--force',
];
const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (!process.env.FRAMEWISE_CACHE) rmSync(cache, { recursive: true, force: true });
process.exit(run.status ?? 1);
