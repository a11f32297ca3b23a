#!/usr/bin/env node
// Runs the vitest suite with the JSON reporter beside the default one, then prints the one
// closing line CI reads: `tests: N passed, N failed`. The exit code is vitest's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'framewise-test-'));
const report = join(dir, 'report.json');
const vitest = join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(
  process.execPath,
  [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
let passed = 0;
let failed = 0;
try {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests + (json.numRuntimeErrorTestSuites ?? 0);
  // A file that fails to load has no tests; count it so a broken import cannot pass.
  for (const file of json.testResults ?? []) if (file.status === 'failed' && file.assertionResults.length === 0) failed += 1;
} catch {
  failed += 1;
}
rmSync(dir, { recursive: true, force: true });
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(run.status ?? 1);
