/**
 * Run-time backend choice. This file (and only this file) knows which tfjs backend runs:
 * everything else asks `selectBackend()` (`useBackend()` for a request the run options
 * checked already) and `withHeadBackend()`. The backends and their factories are the
 * `BACKENDS` registry (`backends.ts`).
 */
import { tf } from './tf.js';
import { FramewiseError } from '../errors.js';
import { debug } from '../log.js';
import { checkSignal } from '../validate.js';
import { BACKENDS, type BackendEntry, type BackendName, type BackendRequest } from './backends.js';

export { BACKENDS, type BackendName, type BackendRequest } from './backends.js';

/** Which backend runs, and why it was chosen (recorded in output metadata). */
export interface BackendInfo {
  name: BackendName;
  reason: string;
}

let current: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

/** The backend asked for, or under `auto` the first in `BACKENDS` that loads (cpu always does). */
async function select(requested: BackendRequest): Promise<BackendInfo> {
  if (requested !== 'auto') {
    const entry: BackendEntry = BACKENDS.get(requested);
    try {
      return { name: requested, reason: `requested; ${await entry.load()}` };
    } catch (error) {
      const remedy = entry.remedy ? `. ${entry.remedy}` : '';
      throw new FramewiseError(
        'BACKEND',
        `backend '${requested}' was requested but ${(error as Error).message}${remedy}`,
        { cause: error },
      );
    }
  }
  return BACKENDS.firstThatLoads(async (name, entry, refused) => {
    const loaded = await entry.load();
    return { name, reason: `auto: ${refused ? `${refused}; ` : ''}${loaded}` };
  });
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
  BACKENDS.check('backend', requested, { auto: true });
  checkSignal('signal', options.signal);
  return useBackend(requested);
}

/**
 * `selectBackend()` for a request resolved already (the run options checked it): the engine
 * that the runner opens uses it, so `backend` is checked once, at the boundary.
 */
export async function useBackend(requested: BackendRequest): Promise<BackendInfo> {
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
