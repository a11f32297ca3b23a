/**
 * Loading the wasm backend leaves the program's uncaught errors alone: its Emscripten module
 * adds process handlers that rethrow, which made any unhandled rejection exit 7 from inside
 * tfjs-wasm. After selectBackend('wasm') one exits as Node makes it: code 1, the app's error.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';

describe("selectBackend('wasm')", () => {
  it('adds no uncaughtException or unhandledRejection handler: an app error exits 1, not 7', () => {
    const script = `
      const { selectBackend } = await import(${JSON.stringify(join(ROOT, 'dist', 'tfjs', 'backend.js'))});
      const before = process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection');
      const { name } = await selectBackend('wasm');
      if (name !== 'wasm') throw new Error('wasm did not load: ' + name);
      console.log(before, process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection'));
      Promise.reject(new Error('the app failed'));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.stdout.trim()).toBe('0 0');
    expect(run.stderr).toMatch(/Error: the app failed/);
    expect(run.status).toBe(1);
  });
});
