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
  constructor(readonly reason: string, options?: { cause?: unknown }) {
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
 * two 1-thread sessions on 2 cores (issue 12), so one session is enough.
 */
export function autoIntraOpThreads(cores = availableParallelism()): number {
  return Math.max(1, cores <= 2 ? cores : cores - Math.ceil(cores / 4));
}

/** How the session's threads are set: intra-op threads and whether idle threads spin. */
export interface ThreadPlan {
  intraOpThreads: number;
  spinning: boolean;
}

/**
 * The thread plan: `intraOpThreads` when given, else `FRAMEWISE_ONNX_THREADS`, else by cores;
 * spinning off unless `FRAMEWISE_ONNX_SPINNING=1`. The two variables are levers for
 * measuring (`npm run bench:threads`), not settings a user should need: with spinning on, a
 * 2-thread session lost half its throughput whenever ffmpeg held the other core (issue 12).
 */
export function threadPlan(intraOpThreads?: number, env: NodeJS.ProcessEnv = process.env): ThreadPlan {
  const fromEnv = env.FRAMEWISE_ONNX_THREADS?.trim();
  if (intraOpThreads === undefined && fromEnv) {
    intraOpThreads = Number(fromEnv);
    if (!Number.isInteger(intraOpThreads) || intraOpThreads < 1) throw invalid('FRAMEWISE_ONNX_THREADS', 'a positive integer', fromEnv);
  }
  const spin = env.FRAMEWISE_ONNX_SPINNING?.trim() ?? '0';
  if (spin !== '0' && spin !== '1') throw invalid('FRAMEWISE_ONNX_SPINNING', "'0' or '1'", spin);
  return { intraOpThreads: intraOpThreads ?? autoIntraOpThreads(), spinning: spin === '1' };
}

/** Words for reasons and metadata: "2 intra-op threads, spinning off". */
export function describeThreads(plan: ThreadPlan): string {
  return `${plan.intraOpThreads} intra-op thread${plan.intraOpThreads === 1 ? '' : 's'}, spinning ${plan.spinning ? 'on' : 'off'}`;
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
