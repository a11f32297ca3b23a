/**
 * Start-up: the built CLI is executable as it is (`npx framewise`), and `--version`, `--help`
 * and a usage error load none of the heavy modules (tfjs, ONNX Runtime, sharp, BullMQ).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, CLI, ROOT } from './helpers.js';
import { tempDir } from '../helpers.js';

beforeAll(assertBuilt);

const HEAVY =
  /node_modules\/(@tensorflow|onnxruntime-node|onnxruntime-common|sharp|@img|bullmq|ioredis|nsfwjs)\//;

/** Runs the CLI with `args` and returns its exit code and every module it loaded. */
function loaded(args: string[]): { status: number | null; modules: string[] } {
  const file = join(tempDir('framewise-startup-'), 'modules.txt');
  const run = spawnSync(
    process.execPath,
    ['--import', join(ROOT, 'test', 'cli', 'loaded-modules.mjs'), CLI, ...args],
    {
      encoding: 'utf8',
      env: { ...process.env, FRAMEWISE_LOADED_MODULES: file },
    },
  );
  return { status: run.status, modules: readFileSync(file, 'utf8').split('\n').filter(Boolean) };
}

describe('framewise start-up', () => {
  it('dist/cli/main.js is executable and runs without `node` in front', () => {
    expect(statSync(CLI).mode & 0o111).toBe(0o111);
    const run = spawnSync(CLI, ['--version'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^framewise\/\d+\.\d+\.\d+/);
  });

  it.each([
    ['--version', ['--version'], 0],
    ['--help', ['--help'], 0],
    ['an unknown command', ['nope'], 2],
    ['a bad flag value', ['embed', 'samples/', '--out', '-', '--frames', '0'], 2],
  ])('%s loads no heavy module', (_, args, status) => {
    const run = loaded(args);
    expect(run.status).toBe(status);
    // The hook saw the CLI itself, so an empty list cannot pass for "nothing heavy".
    expect(run.modules.some((m) => m.endsWith('/dist/cli/main.js'))).toBe(true);
    expect(run.modules.filter((m) => HEAVY.test(m))).toEqual([]);
  });

  it.each(['embed', 'export'])(
    '`%s --help` gives no default for a --no-x flag (it read "(default: true)")',
    (command) => {
      const run = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
      const negated = run.stdout.split('\n').filter((l) => /^\s+--no-/.test(l));
      expect(negated.length).toBeGreaterThan(0);
      for (const line of negated) expect(line).not.toMatch(/default/);
    },
  );
});

describe('framewise flags', () => {
  const samples = join(ROOT, 'samples');
  it.each([
    ['--out', ['embed', samples, '--out', '']],
    ['--out', ['embed', samples, '--out=']],
    ['--cache', ['embed', samples, '--out', '-', '--cache', '']],
    ['--queue', ['embed', samples, '--out', '-', '--redis', 'redis://127.0.0.1:1', '--queue', '']],
    ['--model', ['classify', samples, '--model', '']],
  ])('an empty value for %s is a usage error naming the flag (the parser read it as 0)', (flag, args) => {
    const cwd = tempDir('framewise-empty-');
    const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`framewise: \`${flag}\` was given an empty value\n`);
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('framewise did you mean', () => {
  it.each([
    [['classify', 'samples/', '--modle', 'm'], 'Unknown option `--modle`; did you mean `--model`?'],
    [['classify', 'samples/', '--top-k5'], 'Unknown option `--top-k5`; did you mean `--top-k`?'],
    [['classify', 'samples/', '--no-cach'], 'Unknown option `--no-cach`; did you mean `--no-cache`?'],
    [['embed', 'samples/', '--zzzzzzzz'], 'Unknown option `--zzzzzzzz`\n'],
    [['clasify', 'samples/'], 'unknown command `clasify`; did you mean `classify`?'],
    [['nope'], 'unknown command `nope`; the commands are embed, train, classify,'],
  ])('%j: one line quoting the word as typed, with the nearest flag or command', (args, line) => {
    const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`framewise: ${line}`);
    // Not the whole help: one line and where the usage is.
    expect(run.stderr.split('\n').length).toBe(3);
  });
});

describe('framewise messages name flags', () => {
  it.each([
    [
      ['train', 'samples/', '--out', 'samples/model'],
      'Output samples/model already exists; pass `--force` to replace it',
    ],
    [['train', 'samples/', '--out', 'x', '--val-split', '3'], 'for `--val-split` but received 3'],
    [['train', 'samples/', '--out', 'x', '--head', 'nope'], "for `--head` but received 'nope'"],
  ])("%j: the library's option names (`force: true`, `valSplit`, `head.type`) as the flags", (args, text) => {
    const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(text);
  });
});

describe('framewise <command> --help', () => {
  it.each([
    ['compare', ['0', '2', '141']],
    ['worker', ['1', '2', '130']],
    ['embed', ['0', '1', '2', '3', '130', '141']],
  ])('%s lists only the exit codes that apply to it', (command, codes) => {
    const run = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
    const section = run.stdout.split('Exit codes:\n')[1];
    expect(
      section
        .split('\n')
        .filter(Boolean)
        .map((line) => line.trim().split(/\s+/)[0]),
    ).toEqual(codes);
  });
});
