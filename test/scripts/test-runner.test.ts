/**
 * scripts/test.mjs: the closing line `tests: N passed, N failed` counts every failure, so a
 * failing exit never reads "0 failed". Each case runs the script on a throwaway vitest project.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';
import { tempDir } from '../helpers.js';

/** Runs scripts/test.mjs on a project of `files` (globals on, so nothing needs resolving). */
function runOn(files: Record<string, string>): { status: number | null; last: string } {
  const dir = tempDir('framewise-test-runner-');
  writeFileSync(
    join(dir, 'vitest.config.mjs'),
    "export default { test: { globals: true, include: ['*.test.mjs'] } };\n",
  );
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const run = spawnSync(
    process.execPath,
    [join(ROOT, 'scripts', 'test.mjs'), '--root', dir, '--config', join(dir, 'vitest.config.mjs')],
    {
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0' },
    },
  );
  const lines = run.stdout.trim().split('\n');
  return { status: run.status, last: lines[lines.length - 1] ?? '' };
}

const ok = "it('passes', () => {});\n";

describe('scripts/test.mjs', () => {
  it('counts nothing failed and exits 0 when all pass', () => {
    expect(runOn({ 'ok.test.mjs': ok })).toEqual({ status: 0, last: 'tests: 1 passed, 0 failed' });
  });

  it.each([
    [
      'a set-up hook throws (its tests are skipped)',
      "beforeAll(() => { throw new Error('no server'); });\nit('a', () => {});\nit('b', () => {});\n",
    ],
    ['the file fails to import', "import './missing.mjs';\nit('a', () => {});\n"],
    [
      'an error escapes every test',
      "it('a', async () => { setTimeout(() => { throw new Error('late'); }, 1); await new Promise((r) => setTimeout(r, 50)); });\n",
    ],
    ['a test fails', "it('a', () => { throw new Error('no'); });\n"],
  ])('counts a failure and exits non-zero when %s', (_, text) => {
    const run = runOn({ 'ok.test.mjs': ok, 'bad.test.mjs': text });
    expect(run.last).toMatch(/^tests: \d+ passed, 1 failed$/);
    expect(run.status).not.toBe(0);
  });
});
