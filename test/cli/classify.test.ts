/**
 * `framewise train` then `framewise classify`, end to end through the built CLI on the
 * generated arrow-of-time videos: the LSTM head must tell forward from reversed clips of
 * scenes it never saw. Also: CSV output, a mixed folder with bad files (exit 1), usage
 * errors (exit 2, nothing written).
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../fixtures.js';
import { assertBuilt, jsonl, runCli } from './helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-cli-classify-');
const cache = join(dir, 'cache');
const model = join(dir, 'model');
const common = ['--cache', cache, '--frames', '8', '--quiet'];

beforeAll(async () => {
  assertBuilt();
  const run = await runCli([
    'train',
    fixture('arrow/train.csv'),
    '--out',
    model,
    '--head',
    'lstm',
    '--units',
    '32',
    '--epochs',
    '40',
    '--patience',
    '8',
    '--seed',
    '1',
    ...common,
  ]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/Clips per class: forward 16, reversed 16/);
  expect(run.stdout).toMatch(/32 clips \(288 training clips with augmentation\)/);
  expect(run.stdout).toMatch(/Model written to /);
}, 600_000);

describe('framewise train + classify', () => {
  it('writes a model folder that classify reads its frames from', () => {
    const info = JSON.parse(readFileSync(join(model, 'framewise.json'), 'utf8'));
    expect(info.labels).toEqual(['forward', 'reversed']);
    expect(info.frames).toBe(8);
    expect(info.sampling).toEqual({ kind: 'uniform', frames: 8 });
    expect(existsSync(join(model, 'model.json'))).toBe(true);
  });

  it('classifies held-out scenes with at least 85% accuracy, its options resolved once', async () => {
    const out = join(dir, 'test.jsonl');
    // No --frames: classify takes 8 from the model's framewise.json.
    const run = await runCli(
      ['classify', fixture('arrow/test.csv'), '--model', model, '--out', out, '--cache', cache, '--quiet'],
      { NODE_DEBUG: 'framewise' },
    );
    expect(run.code).toBe(0);
    // Once, over the model's own options, in the CLI; loadClassifier takes the resolved object as it is.
    expect(run.stderr.match(/options: resolved/g)).toHaveLength(1);
    const truth = new Map(
      (
        parse(readFileSync(fixture('arrow/test.csv'), 'utf8'), { columns: true }) as Array<{
          path: string;
          label: string;
        }>
      ).map((r) => [join(fixture('arrow'), r.path), r.label]),
    );
    const records = jsonl<{ path: string; label: string; score: number; topk: unknown[]; clips: unknown[] }>(
      readFileSync(out, 'utf8'),
    );
    expect(records).toHaveLength(truth.size);
    expect(new Set(records.map((r) => r.path))).toEqual(new Set(truth.keys()));
    const correct = records.filter((r) => r.label === truth.get(r.path)).length;
    expect(correct / records.length).toBeGreaterThanOrEqual(0.85);
    for (const r of records) {
      expect(r.topk).toHaveLength(2);
      expect(r.clips).toHaveLength(1);
      expect(r.score).toBeGreaterThanOrEqual(0.5);
    }
  });

  it('a folder mixed with bad files: good ones classified, bad ones error records, exit 1', async () => {
    const mixed = join(dir, 'mixed');
    mkdirSync(mixed);
    for (const f of [
      'arrow/forward/zoom-pal.mp4',
      'arrow/reversed/zoom-pal.mp4',
      'edge/zero-byte.mp4',
      'edge/text.mp4',
      'edge/truncated-nomoov.mp4',
      'edge/audio-only.mp4',
      'edge/truncated.mp4',
    ]) {
      symlinkSync(fixture(f), join(mixed, f.replace(/\//g, '_')));
    }
    const out = join(dir, 'mixed.csv');
    const run = await runCli(['classify', mixed, '--model', model, '--out', out, '--cache', cache]);
    expect(run.code).toBe(1);
    const rows = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(7);
    const byName = Object.fromEntries(rows.map((r) => [r.path.split('/').pop(), r]));
    expect(byName['arrow_forward_zoom-pal.mp4'].label).toBe('forward');
    expect(byName['arrow_reversed_zoom-pal.mp4'].label).toBe('reversed');
    expect(byName['edge_zero-byte.mp4'].error_code).toBe('EMPTY_FILE');
    expect(byName['edge_text.mp4'].error_code).toBe('NOT_A_VIDEO');
    expect(byName['edge_audio-only.mp4'].error_code).toBe('NOT_A_VIDEO');
    expect(byName['edge_truncated-nomoov.mp4'].error_code).toBe('CORRUPT');
    // A truncated video is classified from the frames that decode, and says what it repeated.
    expect(byName['edge_truncated.mp4'].error_code).toBe('');
    expect(byName['edge_truncated.mp4'].warnings).toMatch(/could not be decoded; repeated the frame at/);
    expect(byName['arrow_forward_zoom-pal.mp4'].warnings).toBe('');
    // The summary counts failures by code, and the videos with warnings.
    expect(run.stderr).toMatch(
      /3 ok, 4 failed \(CORRUPT: 1, EMPTY_FILE: 1, NOT_A_VIDEO: 2\), 1 with warnings/,
    );
  });

  it.each([
    [['classify', 'samples/', '--model', '/no/such/model'], /No model in \/no\/such\/model/],
    [['classify', '/no/such/input', '--model', 'samples/model'], /Input \/no\/such\/input does not exist/],
    [
      ['classify', 'samples/', '--model', 'samples/model', '--aggregate', 'median'],
      /Expected one of 'mean', 'max' for `--aggregate`/,
    ],
    [
      ['classify', 'samples/', '--model', 'samples/model', '--top-k', '0'],
      /Expected a positive integer for `--top-k`/,
    ],
    [['embed', 'samples/', '--out', '/no/such/dir/out.jsonl'], /Cannot write the output/],
    [['embed', 'samples/'], /`--out` is required/],
    [
      ['embed', 'samples/', '--out', 'x.jsonl', '--sampling', 'every:3'],
      /Expected 'uniform', 'fps:<n>\[\/<stride>\]' or 'window:<length>\/<stride>'/,
    ],
  ])('usage error %j exits 2 and writes nothing', async (args, message) => {
    const run = await runCli([...args, '--cache', cache]);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(2);
    expect(run.stdout).not.toMatch(/"path"/);
    expect(existsSync(join(process.cwd(), 'x.jsonl'))).toBe(false);
  });
});
