import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FramewiseError } from '../../src/errors.js';
import { selectBackend, withHeadBackend } from '../../src/tfjs/backend.js';
import { ROOT } from '../cli/helpers.js';

let hasTfjsNode = true;
try {
  await import('@tensorflow/tfjs-node' as string);
} catch {
  hasTfjsNode = false;
}

describe('selectBackend()', () => {
  it("'auto' takes the first that loads and says why", async () => {
    const chosen = await selectBackend('auto');
    expect(tf.getBackend()).toBe(chosen.name);
    if (hasTfjsNode) {
      expect(chosen.name).toBe('tensorflow');
    } else {
      expect(chosen.name).toBe('wasm');
      expect(chosen.reason).toMatch(/@tensorflow\/tfjs-node is not installed/);
      expect(chosen.reason).toMatch(/simd (on|off)/);
    }
  });

  it.skipIf(hasTfjsNode)(
    "'tensorflow' without tfjs-node is a BACKEND error that says how to install it",
    async () => {
      const error = await selectBackend('tensorflow').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FramewiseError);
      expect((error as FramewiseError).code).toBe('BACKEND');
      expect((error as Error).message).toMatch(/npm install @tensorflow\/tfjs-node/);
    },
  );

  it("switches to 'cpu' and back to 'wasm' on request", async () => {
    expect((await selectBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await selectBackend('wasm')).name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('rejects an unknown backend and an aborted signal', async () => {
    await expect(selectBackend('gpu' as never)).rejects.toThrow(
      /Expected one of 'auto', 'tensorflow', 'wasm', 'cpu' for `backend` but received 'gpu'/,
    );
    await expect(selectBackend('auto', { signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow(
      'gone',
    );
  });
});

describe('withHeadBackend()', () => {
  it('retries on cpu when the backend lacks a kernel, says so, and restores the backend', async () => {
    await selectBackend('wasm');
    const seen: string[] = [];
    const messages: string[] = [];
    const result = await withHeadBackend(
      async () => {
        seen.push(tf.getBackend());
        if (tf.getBackend() !== 'cpu') throw new Error("Kernel 'FakeGrad' not registered for backend 'wasm'");
        return 42;
      },
      (m) => messages.push(m),
    );
    expect(result).toBe(42);
    expect(seen).toEqual(['wasm', 'cpu']);
    expect(messages[0]).toMatch(/lacks a kernel the head needs .* running the head on cpu/);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('does not retry other errors', async () => {
    let calls = 0;
    await expect(
      withHeadBackend(async () => {
        calls++;
        throw new Error('bad data');
      }),
    ).rejects.toThrow('bad data');
    expect(calls).toBe(1);
  });
});

/**
 * Loading the wasm backend leaves the program's uncaught errors alone: its Emscripten module
 * adds process handlers that rethrow, which made any unhandled rejection exit 7 from inside
 * tfjs-wasm. After selectBackend('wasm') one exits as Node makes it: code 1, the app's error.
 */
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
