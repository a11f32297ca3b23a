/**
 * The factories of the tfjs backends in `backends.ts`: each makes its backend tfjs's current
 * one and says what loaded, or throws why it cannot run here (that message is its refusal).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { tf } from './tf.js';

const require = createRequire(import.meta.url);

export async function loadTensorflow(): Promise<string> {
  try {
    // require, as for tfjs itself (see tf.ts); it registers the backend on that same tfjs.
    require('@tensorflow/tfjs-node');
  } catch (error) {
    // Not installed is the usual case (its install step needs a download); say so without
    // the resolver's absolute paths, which would end up in every output's metadata.
    if ((error as { code?: string }).code === 'MODULE_NOT_FOUND')
      throw new Error('@tensorflow/tfjs-node is not installed');
    throw new Error(`@tensorflow/tfjs-node failed to load (${(error as Error).message.split('\n')[0]})`);
  }
  let ok: boolean;
  try {
    ok = await tf.setBackend('tensorflow');
  } catch (error) {
    throw new Error(`@tensorflow/tfjs-node failed to initialise: ${(error as Error).message}`);
  }
  if (!ok) throw new Error('@tensorflow/tfjs-node loaded but its backend did not initialise');
  return '@tensorflow/tfjs-node loaded';
}

export async function loadWasm(): Promise<string> {
  let ok: boolean;
  try {
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm'); // require: see tf.ts
    // Point the loader at the binaries shipped in the package (SIMD included); in Node the
    // default prefix depends on how the module was resolved, so make it explicit.
    try {
      wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
    } catch {
      // Already initialised once in this process: the paths are fixed by then.
    }
    ok = await withoutNewProcessHandlers(() => tf.setBackend('wasm'));
  } catch (error) {
    throw new Error(`the wasm backend failed to load: ${(error as Error).message}`);
  }
  if (!ok) throw new Error('the wasm backend did not initialise');
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return `wasm loaded (simd ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'})`;
}

export async function loadCpu(): Promise<string> {
  await tf.setBackend('cpu');
  return 'pure-JS cpu';
}

/**
 * Runs `fn`, then removes the `uncaughtException` and `unhandledRejection` listeners it added.
 * The wasm backend's Emscripten module adds two that rethrow, which turns any uncaught error
 * of the host program into Node's exit 7 ("internal exception handler failure"); what happens
 * to uncaught errors is the program's business, not a library's.
 */
async function withoutNewProcessHandlers<T>(fn: () => Promise<T>): Promise<T> {
  const emitter: NodeJS.EventEmitter = process;
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = events.map((event) => new Set(emitter.listeners(event)));
  try {
    return await fn();
  } finally {
    events.forEach((event, i) => {
      for (const listener of emitter.listeners(event))
        if (!before[i].has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    });
  }
}
