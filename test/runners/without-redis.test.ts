/**
 * A machine without redis-server: the tests that need one skip with one line saying why and
 * how, the argument checks still run, and FRAMEWISE_REQUIRE_REDIS=1 (as .ci/run sets) makes
 * the missing server a failure. The server is hidden by naming a binary that does not exist.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';

function runLibraryTests(env: Record<string, string>): {
  status: number | null;
  output: string;
  last: string;
} {
  const run = spawnSync(
    process.execPath,
    [join(ROOT, 'scripts', 'test.mjs'), 'test/runners/library.test.ts'],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        FORCE_COLOR: '0',
        FRAMEWISE_REQUIRE_REDIS: '',
        FRAMEWISE_REDIS_SERVER: '/nonexistent/redis-server',
        ...env,
      },
    },
  );
  return {
    status: run.status,
    output: run.stdout + run.stderr,
    last: run.stdout.trim().split('\n').at(-1) ?? '',
  };
}

describe('the Redis tests without redis-server', () => {
  it('skip with one line saying why and how; the argument checks still run', () => {
    const run = runLibraryTests({});
    expect(run.status, run.output).toBe(0);
    expect(
      run.output.match(
        /skipping the tests that need Redis: .*apt-get install redis-server.*FRAMEWISE_REDIS_SERVER/g,
      ),
    ).toHaveLength(1);
    expect(run.last).toBe('tests: 2 passed, 0 failed');
  });

  it('fail when FRAMEWISE_REQUIRE_REDIS=1', () => {
    const run = runLibraryTests({ FRAMEWISE_REQUIRE_REDIS: '1' });
    expect(run.status).not.toBe(0);
    expect(run.output).toMatch(/FRAMEWISE_REQUIRE_REDIS is set, but .*redis-server is not installed/);
    expect(run.last).toMatch(/^tests: \d+ passed, [1-9]\d* failed$/);
  });
});
