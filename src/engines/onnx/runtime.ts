/**
 * ONNX Runtime, loaded once, and the one place its session options are set.
 *
 * `onnxruntime-node` is an optional dependency: it is imported dynamically, so a missing or
 * broken install is an answer ("unavailable, because ..."), not a crash, and `engine: 'auto'`
 * falls back to tfjs with that reason.
 */
import { availableParallelism } from 'node:os';
import { FramewiseError } from '../../errors.js';
import { invalid } from '../../validate.js';
import { debug } from '../../log.js';

export type Ort = typeof import('onnxruntime-node');

/** ONNX Runtime cannot run here; `reason` says why (it goes into the fallback's reason). */
export class OnnxUnavailableError extends FramewiseError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('MODEL', `ONNX Runtime is not available: ${reason}`, options);
    this.name = 'OnnxUnavailableError';
  }
}

/**
 * The module loaded as ONNX Runtime. `FRAMEWISE_ONNXRUNTIME` names another specifier, or
 * `off` to keep the onnx engine from ever loading (then `auto` runs tfjs and says so).
 */
function runtimeSpecifier(): string {
  return process.env.FRAMEWISE_ONNXRUNTIME?.trim() || 'onnxruntime-node';
}

const loaded = new Map<string, Promise<Ort>>();

/** Imports onnxruntime-node (once per specifier); rejects with `OnnxUnavailableError`. */
export function loadOrt(): Promise<Ort> {
  const specifier = runtimeSpecifier();
  if (specifier === 'off' || specifier === '0') {
    return Promise.reject(new OnnxUnavailableError('turned off by FRAMEWISE_ONNXRUNTIME'));
  }
  let pending = loaded.get(specifier);
  if (!pending) {
    pending = (async () => {
      try {
        const mod = (await import(specifier)) as Ort & { default?: Ort };
        // CJS through ESM: the named exports are there, or under `default`.
        const ort = (mod.InferenceSession ? mod : mod.default) as Ort;
        if (!ort?.InferenceSession) throw new Error('the module has no InferenceSession');
        debug('onnx: %s %s loaded', specifier, ort.env?.versions?.node ?? '');
        return ort;
      } catch (error) {
        const code = (error as { code?: string }).code;
        // Say "not installed" without the resolver's absolute paths, which end up in outputs.
        const reason =
          code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
            ? `${specifier} is not installed`
            : `${specifier} failed to load (${(error as Error).message.split('\n')[0]})`;
        throw new OnnxUnavailableError(reason, { cause: error });
      }
    })();
    pending.catch(() => loaded.delete(specifier));
    loaded.set(specifier, pending);
  }
  return pending;
}

/** The version of the loaded runtime, for reasons and metadata. */
export function ortVersion(ort: Ort): string {
  return ort.env?.versions?.node ?? ort.env?.versions?.common ?? 'unknown';
}

/**
 * Intra-op threads by cores: every core up to 2, then leave a quarter for ffmpeg's decoding
 * (the same split as the tfjs worker pool). With spinning off, one 2-thread session matched
 * two 1-thread sessions on 2 cores (docs/performance.md), so one session is enough.
 */
export function autoIntraOpThreads(cores = availableParallelism()): number {
  return Math.max(1, cores <= 2 ? cores : cores - Math.ceil(cores / 4));
}

/** How the session's threads are set: intra-op threads, whether idle threads spin, frames per run. */
export interface ThreadPlan {
  intraOpThreads: number;
  spinning: boolean;
  /** Frames per `session.run`. */
  runFrames: number;
}

/**
 * Frames per `session.run` by intra-op threads. Measured with the session on the main thread
 * (before the ONNX worker, pool.ts): one frame a run was the fastest on 2 cores (`npm run
 * bench:threads`: 1.16x faster than 32 a run), and ORT's per-frame cost is lowest at batch 1
 * there too (docs/performance.md); in the worker a run no longer holds the main thread, so
 * this is worth measuring again. Above 2 threads, not measured: 4, so that each thread has
 * more than one frame's worth to share.
 */
export function autoRunFrames(intraOpThreads: number): number {
  return intraOpThreads <= 2 ? 1 : 4;
}

function positiveFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const text = env[name]?.trim();
  if (!text) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw invalid(name, 'a positive integer', text);
  return n;
}

/**
 * The thread plan: each field as given, else from `FRAMEWISE_ONNX_THREADS`,
 * `FRAMEWISE_ONNX_RUN_FRAMES`, else by cores; spinning off unless `FRAMEWISE_ONNX_SPINNING=1`.
 * The variables are levers for measuring (`npm run bench:threads`), not settings a user
 * should need: with spinning on, a 2-thread session lost half its throughput whenever ffmpeg
 * held the other core (docs/performance.md).
 */
export function threadPlan(
  given: { intraOpThreads?: number; runFrames?: number } = {},
  env: NodeJS.ProcessEnv = process.env,
): ThreadPlan {
  const intraOpThreads =
    given.intraOpThreads ?? positiveFromEnv(env, 'FRAMEWISE_ONNX_THREADS') ?? autoIntraOpThreads();
  const runFrames =
    given.runFrames ?? positiveFromEnv(env, 'FRAMEWISE_ONNX_RUN_FRAMES') ?? autoRunFrames(intraOpThreads);
  const spin = env.FRAMEWISE_ONNX_SPINNING?.trim() || '0';
  if (spin !== '0' && spin !== '1') throw invalid('FRAMEWISE_ONNX_SPINNING', "'0' or '1'", spin);
  return { intraOpThreads, spinning: spin === '1', runFrames };
}

/** Words for reasons and metadata: "2 intra-op threads, spinning off, 1 frame a run". */
export function describeThreads(plan: ThreadPlan): string {
  const s = (n: number) => (n === 1 ? '' : 's');
  return `${plan.intraOpThreads} intra-op thread${s(plan.intraOpThreads)}, spinning ${plan.spinning ? 'on' : 'off'}, ${plan.runFrames} frame${s(plan.runFrames)} a run`;
}

/** Session options, all here. */
export function sessionOptions(plan: ThreadPlan): import('onnxruntime-node').InferenceSession.SessionOptions {
  const spin = plan.spinning ? '1' : '0';
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: plan.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true,
    // Flattened by the Node binding into `session.intra_op.allow_spinning` (a config entry).
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
}
