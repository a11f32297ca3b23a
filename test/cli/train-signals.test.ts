/**
 * Ctrl-C and SIGTERM during `framewise train`, through the built CLI: in the embedding
 * phase and in the training phase the run exits 130 within 2 s, and the model folder it
 * was to replace (with --force) is left exactly as it was.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../fixtures.js';
import { assertBuilt, startCli } from './helpers.js';
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

function untouched(): void {
  expect(readdirSync(model)).toEqual(['framewise.json']);
  expect(readFileSync(join(model, 'framewise.json'), 'utf8')).toBe(OLD);
  // Nothing half-written beside it either.
  expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
}

async function interruptWhen(signal: NodeJS.Signals, ready: (stderr: string) => boolean, extra: string[]): Promise<number> {
  const { child, done } = startCli(['train', fixture('arrow/train.csv'), '--out', model, '--force', '--cache', cache, '--frames', '8', ...extra]);
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const until = Date.now() + 300_000;
  while (!ready(stderr) && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
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
    // The first progress line comes once videos are decoding.
    const ms = await interruptWhen('SIGINT', (e) => /\d+\/\d+ videos/.test(e), []);
    expect(ms).toBeLessThan(2000 + 300 /* process teardown on a loaded 2-core box */);
    untouched();
  });

  it('SIGTERM while training: exit 130 within 2 s, the old model folder as it was', async () => {
    const ms = await interruptWhen('SIGTERM', (e) => /^epoch +2 /m.test(e), ['--epochs', '1000', '--patience', '1000']);
    expect(ms).toBeLessThan(2000 + 300);
    untouched();
  });
});
