/**
 * Boundary validation. One helper per kind of value; every message names the field with
 * dots, says what was expected and what came instead. A wrong type or range is a TypeError.
 */
import { inspect } from 'node:util';

function received(value: unknown): string {
  return inspect(value, { depth: 0, breakLength: Infinity });
}

/** A TypeError marked `code: 'USAGE'`, so the CLI can tell a bad option from a bug. */
export type OptionError = TypeError & { code: 'USAGE' };

export function isOptionError(error: unknown): error is OptionError {
  return error instanceof TypeError && (error as Partial<OptionError>).code === 'USAGE';
}

/** A TypeError for a bad option whose message does not fit `invalid()`. */
export function optionError(message: string): OptionError {
  return Object.assign(new TypeError(message), { code: 'USAGE' as const });
}

export function invalid(field: string, expected: string, value: unknown): OptionError {
  return optionError(`Expected ${expected} for \`${field}\` but received ${received(value)}`);
}

/** A message for two options that cannot go together; it names both. */
export function conflict(a: string, b: string, why: string): OptionError {
  return optionError(`\`${a}\` and \`${b}\` conflict: ${why}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The upper bound of every size-like option: beyond these a run would not fit in memory or
 * time (`frames: 1e9` once crashed V8), so they are usage errors that name the bound.
 */
export const LIMITS = {
  /** Frames per clip, T. */
  frames: 1024,
  /** Frame side in pixels. */
  size: 2048,
  /** Clips per backbone call, and per training batch. */
  batch: 1024,
  /** ffmpeg decodes at once, ffmpeg threads, backbone workers. */
  parallel: 256,
  /** Recurrent units. */
  units: 8192,
  /** Epochs and early-stopping patience. */
  epochs: 1_000_000,
  /** Extra clips per video when training. */
  augment: 256,
  /** k of top-k. */
  topK: 1000,
  /** Bootstrap resamples. */
  resamples: 1_000_000,
  /** Per-video timeout, in milliseconds (a day). */
  timeoutMs: 86_400_000,
  /** Seeds (32 bits). */
  seed: 2 ** 32 - 1,
  /** Frames per second of `fps:<n>` sampling. */
  fps: 1000,
} as const;

export function positiveInteger(field: string, value: unknown, max?: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw invalid(field, 'a positive integer', value);
  if (max !== undefined && value > max) throw invalid(field, `a positive integer up to ${max}`, value);
  return value;
}

export function nonNegativeInteger(field: string, value: unknown, max?: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
    throw invalid(field, 'a non-negative integer', value);
  if (max !== undefined && value > max) throw invalid(field, `a non-negative integer up to ${max}`, value);
  return value;
}

export function positiveNumber(field: string, value: unknown, max?: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw invalid(field, 'a positive number', value);
  if (max !== undefined && value > max) throw invalid(field, `a positive number up to ${max}`, value);
  return value;
}

export function nonNegativeNumber(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw invalid(field, 'a non-negative number', value);
  return value;
}

/** A number in [min, max] (inclusive unless said otherwise). */
export function numberInRange(
  field: string,
  value: unknown,
  min: number,
  max: number,
  opts: { exclusiveMax?: boolean; exclusiveMin?: boolean } = {},
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (opts.exclusiveMin ? value > min : value >= min) &&
    (opts.exclusiveMax ? value < max : value <= max);
  if (!ok)
    throw invalid(
      field,
      `a number ${opts.exclusiveMin ? '>' : '>='} ${min} and ${opts.exclusiveMax ? '<' : '<='} ${max}`,
      value,
    );
  return value as number;
}

export function oneOf<T extends string>(field: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw invalid(field, `one of ${choices.map((c) => `'${c}'`).join(', ')}`, value);
  }
  return value as T;
}

export function nonEmptyString(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'a non-empty string', value);
  return value;
}

export function boolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid(field, 'a boolean', value);
  return value;
}

/**
 * Lets the event loop turn (a signal handler, a timer) between long synchronous steps, such as
 * building, folding or converting a backbone, then rejects with `signal.reason` if it was
 * aborted meanwhile: a Ctrl-C during a cold start stops at the next step, not after them all.
 */
export async function yieldTurn(signal?: AbortSignal): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  signal?.throwIfAborted();
}

/** Throws `signal.reason` when the signal is already aborted; a no-op without a signal. */
export function checkSignal(field: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw invalid(field, 'an AbortSignal', signal);
  signal.throwIfAborted();
  return signal;
}

/** The callers `onAbort` holds for a signal, and the one listener the signal has for all of them. */
const abortCallers = new WeakMap<AbortSignal, { callers: Set<() => void>; fire: () => void }>();

/**
 * Calls `listener` once when `signal` aborts (never when it is aborted already, as
 * `addEventListener` would not), and returns the function that removes it, for a `finally`.
 * However many decodes, inputs and child processes share one signal (a run's, at any
 * `--concurrency`), the signal holds one 'abort' listener, so Node never warns of a leak.
 */
export function onAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (!signal || signal.aborted) return () => undefined;
  let entry = abortCallers.get(signal);
  if (!entry) {
    const callers = new Set<() => void>();
    const fire = (): void => {
      abortCallers.delete(signal);
      for (const caller of callers) {
        try {
          caller();
        } catch (error) {
          // As an EventTarget reports a listener's error: the others still run.
          process.nextTick(() => {
            throw error;
          });
        }
      }
    };
    entry = { callers, fire };
    abortCallers.set(signal, entry);
    signal.addEventListener('abort', fire, { once: true });
  }
  const { callers, fire } = entry;
  const caller = (): void => listener();
  callers.add(caller);
  return () => {
    callers.delete(caller);
    if (callers.size === 0 && abortCallers.get(signal)?.callers === callers) {
      abortCallers.delete(signal);
      signal.removeEventListener('abort', fire);
    }
  };
}

/** Rejects with `signal.reason` as soon as it aborts; the listener is removed when `work` settles. */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const off = onAbort(signal, () => reject(signal.reason));
    work.then(resolve, reject).finally(off);
  });
}
