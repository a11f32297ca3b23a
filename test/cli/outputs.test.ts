/**
 * What the CLI does with an output that already exists, and with a usage mistake, as a user
 * meets them: a folder that is not framewise's is never replaced, even with --force; a plain
 * file in the way is refused; a re-run replaces framewise's folder whole. Each refusal comes
 * before any work (exit 2, nothing touched).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../fixtures.js';
import { assertBuilt, runCli } from './helpers.js';
import { tempDir } from '../helpers.js';

const work = tempDir('fw-outputs-');
const user = join(work, 'important');
beforeAll(async () => {
  assertBuilt();
  await mkdir(user);
  await writeFile(join(user, 'thesis.tex'), 'precious');
  await writeFile(join(work, 'decoy.txt'), 'a file');
  // Enough of a model for eval's own check: the output is refused before the model loads.
  await mkdir(join(work, 'fake-model'));
  await writeFile(join(work, 'fake-model', 'framewise.json'), '{}');
});

async function untouched(): Promise<void> {
  expect(await readdir(user)).toEqual(['thesis.tex']);
  expect(await readFile(join(user, 'thesis.tex'), 'utf8')).toBe('precious');
  expect(await readFile(join(work, 'decoy.txt'), 'utf8')).toBe('a file');
  expect((await readdir(work)).filter((n) => n.startsWith('.'))).toEqual([]);
}

describe('output folders', () => {
  const commands: Array<[string, (out: string) => string[]]> = [
    ['train', (out) => ['train', fixture('arrow/train.csv'), '--out', out, '--quiet']],
    ['eval', (out) => ['eval', fixture('arrow/test.csv'), '--model', join(work, 'fake-model'), '--out', out]],
    ['split', (out) => ['split', fixture('arrow'), '--out', out]],
    ['embed --format npy', (out) => ['embed', fixture('arrow'), '--format', 'npy', '--out', out, '--quiet']],
  ];
  for (const [name, args] of commands) {
    it(`${name}: refuses a user's folder and a file, even with --force, before any work`, async () => {
      for (const out of [user, join(work, 'decoy.txt')]) {
        const r = await runCli([...args(out), '--force']);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(
          /Cannot write the .* folder .*(not a .* that framewise wrote|exists and is not a folder)/,
        );
        expect(r.stderr).not.toMatch(/Usage:/);
      }
      await untouched();
    });
  }

  it('split: a re-run needs --force and replaces the folder whole (no stale val.csv)', async () => {
    const out = join(work, 'split');
    const first = await runCli(['split', fixture('arrow'), '--out', out, '--val', '0.25', '--seed', '3']);
    expect(first.code, first.stderr).toBe(0);
    expect(existsSync(join(out, 'val.csv'))).toBe(true);
    const again = await runCli(['split', fixture('arrow'), '--out', out, '--val', '0', '--seed', '3']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; pass `--force` to replace it/);
    expect(existsSync(join(out, 'val.csv'))).toBe(true);
    const forced = await runCli([
      'split',
      fixture('arrow'),
      '--out',
      out,
      '--val',
      '0',
      '--seed',
      '3',
      '--force',
    ]);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['split.json', 'test.csv', 'train.csv']);
    // An empty folder needs no --force.
    const empty = join(work, 'empty');
    await mkdir(empty);
    expect((await runCli(['split', fixture('arrow'), '--out', empty])).code).toBe(0);
  });

  it('train: an existing model folder needs --force', async () => {
    const model = join(work, 'model');
    await mkdir(model);
    await writeFile(join(model, 'framewise.json'), '{"format":"framewise-model"}');
    const r = await runCli(['train', fixture('arrow/train.csv'), '--out', model, '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already exists; pass `--force` to replace it/);
    expect(await readdir(model)).toEqual(['framewise.json']);
  });
});

describe('usage mistakes', () => {
  it('no command: the usage on stderr and exit 2; an unknown one: one line with the nearest command', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/Usage:/);
    const typo = await runCli(['tarin']);
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toBe(
      'framewise: unknown command `tarin`; did you mean `train`?\nRun `framewise --help` for the usage.\n',
    );
  });

  it('a bad option prints one line and where the usage is, not the whole help', async () => {
    const r = await runCli(['split', fixture('arrow'), '--out', join(work, 'x'), '--test', '2']);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^framewise: .*--test/);
    expect(lines[1]).toBe('Run `framewise split --help` for the usage.');
  });

  it('a size-like option past its bound is refused, naming the option and the bound', async () => {
    const r = await runCli(['embed', fixture('arrow'), '--out', '-', '--frames', '1000000000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/positive integer up to 1024 for `--frames` but received 1000000000/);
    const t = await runCli([
      'train',
      fixture('arrow/train.csv'),
      '--out',
      join(work, 'm'),
      '--epochs',
      '99999999',
    ]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/up to 1000000 for `--epochs`/);
    const s = await runCli(['embed', fixture('arrow'), '--out', '-', '--size', '100000']);
    expect(s.stderr).toMatch(/up to 2048 for `--size`/);
  });

  it('a negative number is a value with its range message, not an unknown option', async () => {
    const e = await runCli(['train', fixture('arrow/train.csv'), '--out', join(work, 'm'), '--epochs', '-1']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/Expected a positive integer for `--epochs` but received "-1"/);
    const w = await runCli(['embed', fixture('arrow'), '--out', '-', '--workers', '-1']);
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/non-negative integer for `--workers` but received "-1"/);
  });

  it.each([
    ['--frames', '0x10', /Expected a positive integer for `--frames` but received "0x10"/],
    ['--frames', '1e2', /Expected a positive integer for `--frames` but received "1e2"/],
    ['--batch', '0b11', /Expected a positive integer for `--batch` but received "0b11"/],
    ['--threads', ' 2', /Expected a non-negative integer for `--threads` but received " 2"/],
    ['--timeout', '0x10', /Expected a positive number of seconds for `--timeout` but received "0x10"/],
    ['--timeout', '1e2', /Expected a positive number of seconds for `--timeout` but received "1e2"/],
  ])('a number flag is decimal digits: %s %j is refused', async (flag, value, message) => {
    const r = await runCli(['embed', fixture('arrow'), '--out', join(work, 'never.jsonl'), flag, value]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(work, 'never.jsonl'))).toBe(false);
  });

  it('`--` ends the options: a video named -rf.mp4 is an input', async () => {
    const dir = join(work, 'dash');
    await mkdir(dir);
    await copyFile(
      fixture(`arrow/forward/${(await readdir(fixture('arrow/forward')))[0]}`),
      join(dir, '-rf.mp4'),
    );
    const r = await runCli(
      ['embed', '--out', '-', '--frames', '2', '--no-cache', '--quiet', '--', '-rf.mp4'],
      {},
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).path).toBe('-rf.mp4');
    expect(await readdir(dir)).toEqual(['-rf.mp4']);
  });
});
