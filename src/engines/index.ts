/**
 * The one way into the engines: `createFrameEmbedder()` picks and loads the engine for a
 * backbone spec and returns a `FrameEmbedder`. This module loads no engine itself (tfjs is
 * imported only when a backbone must run), so a run served wholly from the embedding
 * cache never loads one.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError } from '../errors.js';
import { defaultCacheDir, writeFileAtomic } from '../fs.js';
import { debug } from '../log.js';
import { isOnnxBackbone, nsfwjsVersion, parseBackboneSpec, type BackboneInfo, type BackboneSpec } from '../embedding/backbone-spec.js';
import { checkSignal, conflict, invalid, isOptionError, isPlainObject, LIMITS, nonNegativeInteger, oneOf, positiveInteger } from '../validate.js';
import { stableStringify } from '../embedding/cache.js';
import type { FrameEmbedder } from '../embedding/frame-embedder.js';

// The tfjs backend asked for (`auto` takes tfjs-node, then wasm, then cpu): one definition, in the tfjs layer.
import type { BackendRequest } from '../tfjs/backend.js';
export type { BackendRequest };

/** The engine asked for: `auto` takes ONNX Runtime when it loads and the backbone converts, else tfjs. */
export type EngineRequest = 'auto' | 'onnx' | 'tfjs';
export const ENGINE_REQUESTS: readonly EngineRequest[] = ['auto', 'onnx', 'tfjs'];

/** A registry name (not a path, URL or spec object): only these have a memo. */
function isRegistryName(backbone: BackboneSpec): backbone is string {
  return typeof backbone === 'string' && /^[a-z0-9_]+$/i.test(backbone);
}

/**
 * Where the pipeline remembers what a named backbone is (id, size, D) once it has loaded it,
 * so that a run served wholly from the embedding cache never loads tfjs or the weights.
 * Keyed by the name and the nsfwjs version that ships the weights.
 */
function memoFile(cacheDir: string, name: string): string {
  const key = createHash('sha256').update(stableStringify({ name, nsfwjs: nsfwjsVersion(), v: 1 })).digest('hex').slice(0, 16);
  return join(cacheDir, 'backbone-ids', `${name}-${key}.json`);
}

/**
 * Stands in for the embedder until it is needed: it knows the backbone's id, size and D, and
 * loads the real one on `prepare()` (the engine calls it at the first video that misses the
 * cache, so the load overlaps that video's decoding) or on the first `embedClips`. A run whose
 * videos all come from the cache never loads tfjs.
 */
class LazyEmbedder implements FrameEmbedder {
  private loading?: Promise<FrameEmbedder>;
  private real?: FrameEmbedder;
  constructor(
    private readonly known: BackboneInfo,
    private readonly load: () => Promise<FrameEmbedder>,
  ) {}
  get backboneId(): string {
    return this.known.id;
  }
  get inputSize(): number {
    return this.known.inputSize;
  }
  get dim(): number {
    return this.known.dim;
  }
  get backbone(): BackboneInfo {
    return this.real?.backbone ?? this.known;
  }
  get backend(): { name: string; reason: string } {
    return this.real?.backend ?? { name: 'none', reason: 'not loaded: every embedding so far came from the cache' };
  }
  /** Starts loading now (idempotent), so the load overlaps decoding; errors surface in `embedClips`. */
  prepare(): void {
    if (this.loading) return;
    this.loading = this.load().then((real) => {
      this.real = real;
      if (real.backboneId !== this.known.id || real.dim !== this.known.dim) {
        throw new ModelError(`The backbone loaded (${real.backboneId}) is not the one remembered (${this.known.id}); run again`);
      }
      return real;
    });
    this.loading.catch(() => undefined); // awaited in embedClips
  }
  async embedClips(data: Uint8Array, shape: [number, number, number, number, 3], options?: { signal?: AbortSignal; transfer?: boolean }): Promise<Float32Array> {
    this.prepare();
    const real = await this.loading!;
    return real.embedClips(data, shape, options);
  }
  async dispose(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    if (loading) await (await loading.catch(() => undefined))?.dispose();
    else await this.real?.dispose();
  }
}

/** A tfjs embedder whose `backend` also says how the engine was chosen. */
class Relabelled implements FrameEmbedder {
  constructor(
    private readonly inner: FrameEmbedder,
    readonly backend: { name: string; reason: string },
  ) {}
  get backboneId(): string {
    return this.inner.backboneId;
  }
  get inputSize(): number {
    return this.inner.inputSize;
  }
  get dim(): number {
    return this.inner.dim;
  }
  get backbone(): BackboneInfo {
    return this.inner.backbone;
  }
  embedClips(data: Uint8Array, shape: [number, number, number, number, 3], options?: { signal?: AbortSignal; transfer?: boolean }): Promise<Float32Array> {
    return this.inner.embedClips(data, shape, options);
  }
  prepare(): void {
    this.inner.prepare?.();
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

/** Options of `createFrameEmbedder()`. */
export interface FrameEmbedderOptions {
  /** A registry name or a custom tfjs model. @default 'mobilenet_v2' */
  backbone?: BackboneSpec;
  /**
   * The engine that runs the backbone: `onnx` (onnxruntime-node), `tfjs`, or `auto`, which
   * takes onnx when onnxruntime-node loads and the backbone converts, and tfjs otherwise (its
   * reason says why). Heads and training always run on tfjs.
   * @default 'auto'
   */
  engine?: EngineRequest;
  /** The tfjs backend (when tfjs runs the backbone). @default 'auto' */
  backend?: BackendRequest;
  /** Where the cut backbone is cached. @default $FRAMEWISE_CACHE or ~/.cache/framewise */
  cacheDir?: string;
  /** tfjs backbone worker threads; 0 runs it in this thread. @default automatic (by cores and backend) */
  workers?: number;
  /** ONNX Runtime intra-op threads. @default by cores (every core up to 2, then three quarters) */
  intraOpThreads?: number;
  /** Told when the backbone must first be prepared (converted to ONNX: seconds). @default none */
  onPrepare?: (message: string) => void;
  signal?: AbortSignal;
  /** Allow a stand-in that loads on first use. @default false */
  lazy?: boolean;
}

/** Loads the backbone as a `FrameEmbedder` (lazily when a cached run may not need it). */
export async function createFrameEmbedder(options: FrameEmbedderOptions = {}): Promise<FrameEmbedder> {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const backbone = parseBackboneSpec('backbone', options.backbone);
  const backend = options.backend === undefined ? 'auto' : oneOf('backend', options.backend, ['auto', 'tensorflow', 'wasm', 'cpu'] as const);
  const engine = options.engine === undefined ? 'auto' : oneOf('engine', options.engine, ENGINE_REQUESTS);
  const workers = options.workers === undefined ? undefined : nonNegativeInteger('workers', options.workers, LIMITS.parallel);
  const intraOpThreads = options.intraOpThreads === undefined ? undefined : positiveInteger('intraOpThreads', options.intraOpThreads, LIMITS.parallel);
  const signal = checkSignal('signal', options.signal);
  if (isOnnxBackbone(backbone) && engine === 'tfjs') {
    throw conflict('backbone', 'engine', `an .onnx backbone runs on the onnx engine, not on tfjs`);
  }
  const load = async (): Promise<FrameEmbedder> => {
    if (isOnnxBackbone(backbone)) {
      // No fallback: tfjs cannot run an ONNX model.
      const { createOnnxEmbedder } = await import('./onnx/embedder.js');
      return createOnnxEmbedder({ backbone, cacheDir: options.cacheDir, intraOpThreads, signal, reasonPrefix: `engine ${engine}` });
    }
    let onnxRefused: string | undefined;
    if (engine !== 'tfjs') {
      try {
        const { createOnnxEmbedder } = await import('./onnx/embedder.js');
        return await createOnnxEmbedder({ backbone, cacheDir: options.cacheDir, intraOpThreads, signal, onPrepare: options.onPrepare, reasonPrefix: `engine ${engine}` });
      } catch (error) {
        // `onnx` was asked for by name, the run was stopped, or a setting is wrong: that is the answer.
        if (engine === 'onnx' || signal?.aborted || isOptionError(error)) throw error;
        onnxRefused = (error as { reason?: string }).reason ?? (error as Error).message;
        debug('engines: onnx refused, tfjs runs: %s', onnxRefused);
      }
    }
    const { createEmbedder } = await import('./tfjs/embedder.js');
    const tfjs = await createEmbedder({ backbone, backend, workers, cacheDir: options.cacheDir, signal });
    const prefix = onnxRefused === undefined ? `engine ${engine}: tfjs` : `engine auto: tfjs, because onnx was refused (${onnxRefused})`;
    return new Relabelled(tfjs, { name: tfjs.backend.name, reason: `${prefix}; ${tfjs.backend.reason}` });
  };
  // The memo sits with the backbone cache, which is used even when the embedding cache is off.
  const memo = isRegistryName(backbone) ? memoFile(options.cacheDir ?? defaultCacheDir(), backbone) : undefined;
  if (memo && options.lazy) {
    try {
      const known = JSON.parse(await readFile(memo, 'utf8')) as BackboneInfo;
      if (known.id && known.dim > 0 && known.inputSize > 0) {
        debug('stages: %s known from %s; loading it only if needed', known.id, memo);
        return new LazyEmbedder(known, load);
      }
    } catch {
      /* no memo yet */
    }
  }
  const embedder = await load();
  if (memo && embedder.backbone) {
    try {
      await mkdir(join(memo, '..'), { recursive: true });
      await writeFileAtomic(memo, Buffer.from(JSON.stringify(embedder.backbone)));
    } catch (error) {
      debug('stages: could not write %s: %s', memo, (error as Error).message);
    }
  }
  return embedder;
}

