/**
 * Run-time backend choice. This file (and only this file) knows which tfjs backend runs:
 * everything else asks `selectBackend()` and `withHeadBackend()`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { tf } from './tf.js';
import { FramewiseError } from '../errors.js';
import { debug } from '../log.js';
import { checkSignal, oneOf } from '../validate.js';

import { BACKEND_REQUESTS, type BackendName, type BackendRequest } from './backends.js';

export { BACKEND_REQUESTS, type BackendName, type BackendRequest } from './backends.js';

/** Which backend runs, and why it was chosen (recorded in output metadata). */
export interface BackendInfo {
  name: BackendName;
  reason: string;
}

const require = createRequire(import.meta.url);
let current: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

async function tryTensorflow(): Promise<string | undefined> {
  try {
    // require, as for tfjs itself (see tf.ts); it registers the backend on that same tfjs.
    require('@tensorflow/tfjs-node');
  } catch (error) {
    // Not installed is the usual case (its install step needs a download); say so without
    // the resolver's absolute paths, which would end up in every output's metadata.
    if ((error as { code?: string }).code === 'MODULE_NOT_FOUND')
      return '@tensorflow/tfjs-node is not installed';
    return `@tensorflow/tfjs-node failed to load (${(error as Error).message.split('\n')[0]})`;
  }
  try {
    if (await tf.setBackend('tensorflow')) return undefined;
    return '@tensorflow/tfjs-node loaded but its backend did not initialise';
  } catch (error) {
    return `@tensorflow/tfjs-node failed to initialise: ${(error as Error).message}`;
  }
}

async function tryWasm(): Promise<string | undefined> {
  try {
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm'); // require: see tf.ts
    // Point the loader at the binaries shipped in the package (SIMD included); in Node the
    // default prefix depends on how the module was resolved, so make it explicit.
    try {
      wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
    } catch {
      // Already initialised once in this process: the paths are fixed by then.
    }
    if (await withoutNewProcessHandlers(() => tf.setBackend('wasm'))) return undefined;
    return 'the wasm backend did not initialise';
  } catch (error) {
    return `the wasm backend failed to load: ${(error as Error).message}`;
  }
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

async function select(requested: BackendRequest): Promise<BackendInfo> {
  if (requested === 'tensorflow') {
    const why = await tryTensorflow();
    if (why) {
      throw new FramewiseError(
        'BACKEND',
        `backend 'tensorflow' was requested but ${why}. Install it with \`npm install @tensorflow/tfjs-node\` ` +
          `(it downloads libtensorflow), or use backend 'auto', 'wasm' or 'cpu'.`,
      );
    }
    return { name: 'tensorflow', reason: 'requested; @tensorflow/tfjs-node loaded' };
  }
  if (requested === 'wasm') {
    const why = await tryWasm();
    if (why) throw new FramewiseError('BACKEND', `backend 'wasm' was requested but ${why}`);
    return { name: 'wasm', reason: `requested; ${wasmFeatures()}` };
  }
  if (requested === 'cpu') {
    await tf.setBackend('cpu');
    return { name: 'cpu', reason: 'requested' };
  }
  const noNode = await tryTensorflow();
  if (!noNode) return { name: 'tensorflow', reason: 'auto: @tensorflow/tfjs-node loaded' };
  const noWasm = await tryWasm();
  if (!noWasm) return { name: 'wasm', reason: `auto: ${noNode}; wasm loaded (${wasmFeatures()})` };
  await tf.setBackend('cpu');
  return { name: 'cpu', reason: `auto: ${noNode}; ${noWasm}; using pure-JS cpu` };
}

function wasmFeatures(): string {
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return `simd ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'}`;
}

/**
 * Makes a tfjs backend current and says which and why. `auto` takes the first that loads:
 * `@tensorflow/tfjs-node`, then wasm (SIMD), then cpu. The choice is process-wide, like tfjs
 * itself; asking again for the same thing returns the same answer without work.
 */
export async function selectBackend(
  requested: BackendRequest = 'auto',
  options: { signal?: AbortSignal } = {},
): Promise<BackendInfo> {
  oneOf('backend', requested, BACKEND_REQUESTS);
  checkSignal('signal', options.signal);
  while (pending) await pending.catch(() => undefined);
  if (current && (requested === 'auto' || requested === current.name) && tf.getBackend() === current.name)
    return current;
  pending = select(requested);
  try {
    current = await pending;
    debug('backend: %s (%s)', current.name, current.reason);
    return current;
  } finally {
    pending = undefined;
  }
}

/** The backend chosen last, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/** The tfjs backend running now (a fallback inside `withHeadBackend` included). */
export function activeBackendName(): string {
  return tf.getBackend();
}

/** True for errors that mean "this backend has no kernel for that op". */
function isMissingKernel(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /kernel .* not (registered|found)|not yet implemented|is not implemented|no kernel/i.test(message);
}

/**
 * Runs head work (training or prediction) on the current backend; when that backend lacks a
 * kernel the head needs, runs it again on `cpu` for the head only, says so through `onFallback`,
 * and puts the previous backend back. Weights created inside `fn` must be created there (a
 * retry rebuilds them on cpu).
 */
export async function withHeadBackend<T>(
  fn: () => Promise<T>,
  onFallback?: (message: string) => void,
): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    const before = tf.getBackend();
    if (before === 'cpu' || !isMissingKernel(error)) throw error;
    const message = `backend '${before}' lacks a kernel the head needs (${(error as Error).message}); running the head on cpu`;
    debug(message);
    onFallback?.(message);
    await tf.setBackend('cpu');
    try {
      return await fn();
    } finally {
      await tf.setBackend(before);
    }
  }
}
