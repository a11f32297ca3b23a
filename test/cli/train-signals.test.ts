/**
 * Ctrl-C and SIGTERM during `framewise train`, through the built CLI: in the embedding
 * phase and in the training phase the run exits 130 within 2 s. While embedding, the model
 * folder it was to replace (with --force) is left exactly as it was; while training, the
 * folder holds the run's checkpoint after its last whole epoch, and `--resume` goes on from it
 * to the weights an uninterrupted run ends with.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../fixtures.js';
import { assertBuilt, runCli, startCli } from './helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-train-signals-');
const cache = join(dir, 'cache');
const model = join(dir, 'model');
const OLD = '{"format": "framewise-model", "an": "older model"}\n';

beforeAll(() => {
  assertBuilt();
  mkdirSync(model);
  writeFileSync(join(model, 'framewise.json'), OLD);
});

/** Whether the run has put any video's embeddings in the cache yet. */
function embeddedSome(): boolean {
  try {
    return readdirSync(join(cache, 'embeddings'), { recursive: true, withFileTypes: true }).some((entry) =>
      entry.isFile(),
    );
  } catch {
    return false; // not made yet
  }
}

function untouched(): void {
  expect(readdirSync(model)).toEqual(['framewise.json']);
  expect(readFileSync(join(model, 'framewise.json'), 'utf8')).toBe(OLD);
  // Nothing half-written beside it either.
  expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
}

async function interruptWhen(
  signal: NodeJS.Signals,
  ready: (stderr: string) => boolean,
  extra: string[],
): Promise<number> {
  const { child, done } = startCli([
    'train',
    fixture('arrow/train.csv'),
    '--out',
    model,
    '--force',
    '--cache',
    cache,
    '--frames',
    '8',
    ...extra,
  ]);
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const until = Date.now() + 300_000;
  while (!ready(stderr) && Date.now() < until && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 20));
  expect(child.exitCode, stderr).toBeNull();
  const sent = performance.now();
  child.kill(signal);
  const run = await done;
  const ms = performance.now() - sent;
  expect(run.code, run.stderr).toBe(130);
  return ms;
}

describe('framewise train and signals', () => {
  it('SIGINT while embedding: exit 130 within 2 s, the old model folder as it was', async () => {
    // Once the first video's embeddings are in the cache, and before training starts (a
    // non-TTY progress line comes only 5 s in, which a quick embedding phase may not reach).
    const ms = await interruptWhen('SIGINT', (e) => embeddedSome() && !/^epoch /m.test(e), []);
    expect(ms).toBeLessThan(2000 + 300 /* process teardown on a loaded 2-core box */);
    untouched();
  });

  it('SIGTERM while training: exit 130 within 2 s, the last whole epoch kept in the model folder', async () => {
    const ms = await interruptWhen('SIGTERM', (e) => /^epoch +2 /m.test(e), [
      '--epochs',
      '1000',
      '--patience',
      '1000',
    ]);
    expect(ms).toBeLessThan(2000 + 300);
    // --force started over: the folder now holds the run in training, not the old model.
    expect(readdirSync(model).sort()).toEqual(['checkpoint.bin', 'framewise.json', 'history.csv']);
    expect(JSON.parse(readFileSync(join(model, 'framewise.json'), 'utf8'))).toMatchObject({
      format: 'framewise-model',
      training: true,
    });
    expect(readFileSync(join(model, 'history.csv'), 'utf8').trim().split('\n').length).toBeGreaterThanOrEqual(
      3,
    ); // header + epochs 1, 2
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

/** weights.bin as float32 values. */
function weightsOf(folder: string): Float32Array {
  const bytes = readFileSync(join(folder, 'weights.bin'));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

describe('framewise train --resume', () => {
  // Small and quick: a tiny head, a few clips per video; no early stop before the last epoch.
  const settings = [
    '--frames',
    '8',
    '--units',
    '8',
    '--augment',
    '2',
    '--epochs',
    '6',
    '--patience',
    '100',
    '--seed',
    '3',
    '--lr-schedule',
    'cosine',
  ];
  const train = (out: string, extra: string[] = [], seed = '3') =>
    runCli([
      'train',
      fixture('arrow/train.csv'),
      '--out',
      out,
      '--cache',
      cache,
      ...settings.map((v) => (v === '3' ? seed : v)),
      ...extra,
    ]);

  it("Ctrl-C at a random epoch, then --resume: the final weights are the uninterrupted run's (within 1e-6)", async () => {
    const whole = join(dir, 'whole');
    const first = await train(whole);
    expect(first.code, first.stderr).toBe(0);

    const cut = join(dir, 'cut');
    const at = 1 + Math.floor(Math.random() * 4); // after epoch 1..4 of 6
    const { child, done } = startCli([
      'train',
      fixture('arrow/train.csv'),
      '--out',
      cut,
      '--cache',
      cache,
      ...settings,
    ]);
    let stderr = '';
    child.stderr!.on('data', (c) => (stderr += c));
    const pattern = new RegExp(`^epoch +${at} `, 'm');
    while (!pattern.test(stderr) && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGINT');
    const stopped = await done;
    expect(stopped.code, `${stopped.stderr} (Ctrl-C after epoch ${at})`).toBe(130);
    const kept = readFileSync(join(cut, 'history.csv'), 'utf8').trim().split('\n').length - 1;
    expect(kept).toBeGreaterThanOrEqual(at);

    // A model in training is not a model yet.
    const classify = await runCli([
      'classify',
      fixture('arrow/forward/zoom-pal.mp4'),
      '--model',
      cut,
      '--cache',
      cache,
    ]);
    expect(classify.code).toBe(2);
    expect(classify.stderr).toMatch(
      /has not finished \(interrupted\?\): go on with `framewise train \.\.\. --resume`/,
    );
    // Other settings are refused, saying what differs; nothing is touched.
    const other = await train(cut, ['--resume', '--batch-size', '8'], '4');
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /Cannot resume .*: settings differ from its checkpoint's: batchSize 8 \(checkpoint: 16\); seed 4 \(checkpoint: 3\)/,
    );
    expect(readFileSync(join(cut, 'history.csv'), 'utf8').trim().split('\n').length - 1).toBe(kept);
    const plain = await train(cut);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(
      /holds an interrupted training run: pass --resume to go on from it, or --force to start over/,
    );
    const both = await train(cut, ['--resume', '--force']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/`--resume` and `--force` conflict/);

    const resumed = await train(cut, ['--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`Resumed after epoch ${kept}.`);
    expect(resumed.stderr).not.toMatch(/^epoch +1 /m);
    const a = weightsOf(whole);
    const b = weightsOf(cut);
    expect(b.length).toBe(a.length);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    expect(diff, `Ctrl-C after epoch ${at}`).toBeLessThanOrEqual(1e-6);
    const rows = (f: string) =>
      readFileSync(join(f, 'history.csv'), 'utf8')
        .trim()
        .split('\n')
        .map((r) => r.split(',').slice(0, 6).join(','));
    expect(rows(cut)).toEqual(rows(whole));
    expect(readdirSync(cut)).not.toContain('checkpoint.bin');

    // A finished model has nothing to resume; --force starts over.
    const again = await train(cut, ['--resume']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/Nothing to resume in .*: it is not a model folder in training/);
  });
});
