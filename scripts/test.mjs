#!/usr/bin/env node
// Runs the vitest suite, then prints the one closing line CI reads: `tests: N passed, N failed`.
// The exit code is vitest's, and a failing exit never comes with "0 failed": whatever failed
// (a test, a file's set-up, an error outside any test, vitest itself) is counted.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'framewise-test-'));
const counts = join(dir, 'counts.json');
const vitest = join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');
const reporter = join(import.meta.dirname, 'test-counts-reporter.mjs');
const run = spawnSync(
  process.execPath,
  [vitest, 'run', '--reporter=default', `--reporter=${reporter}`, ...process.argv.slice(2)],
  {
    stdio: 'inherit',
    env: { ...process.env, FRAMEWISE_TEST_COUNTS: counts },
  },
);
let passed = 0;
let failed = 0;
try {
  ({ passed, failed } = JSON.parse(readFileSync(counts, 'utf8')));
} catch {
  // No counts: vitest stopped before the end of the run (a global set-up or config error).
}
const status = run.status ?? 1;
if (status !== 0 && failed === 0) failed = 1;
rmSync(dir, { recursive: true, force: true });
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(status);
