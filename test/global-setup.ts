/**
 * Vitest global setup: makes the fixture videos once per machine (scripts/make-samples.mjs
 * is a no-op when a current set is already there) into `fixturesDir()`, and checks once
 * whether redis-server runs: without it the Redis tests skip (test/runners/helpers.ts), and
 * this prints the one line that says why and how to run them.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fixturesDir } from './fixtures.js';

export default function setup(): void {
  const dir = fixturesDir();
  // Children (the test workers) inherit this, so every file sees the same folder.
  process.env.FRAMEWISE_FIXTURES = dir;
  const script = join(import.meta.dirname, '..', 'scripts', 'make-samples.mjs');
  const run = spawnSync(process.execPath, [script, '--fixtures-only', '--fixtures-dir', dir], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (run.status !== 0)
    throw new Error(`scripts/make-samples.mjs failed (${run.signal ?? run.status}); see its output above`);
  const redis = process.env.FRAMEWISE_REDIS_SERVER || 'redis-server';
  if (spawnSync(redis, ['--version']).error) {
    process.env.FRAMEWISE_REDIS_MISSING = `${redis} is not installed: apt-get install redis-server (any Redis 6.2+), or FRAMEWISE_REDIS_SERVER=/path/to/redis-server`;
    if (process.env.FRAMEWISE_REQUIRE_REDIS !== '1')
      console.warn(`skipping the tests that need Redis: ${process.env.FRAMEWISE_REDIS_MISSING}`);
  }
}
