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
import { Registry, type NameOf } from '../registry.js';
import { FRAMEWISE_VERSION } from '../version.js';
import {
  nsfwjsVersion,
  parseBackboneSpec,
  type BackboneInfo,
  type BackboneSpec,
} from '../embedding/backbone-spec.js';
import {
  checkSignal,
  conflict,
  invalid,
  isOptionError,
  isPlainObject,
  LIMITS,
  nonNegativeInteger,
  positiveInteger,
} from '../validate.js';
import { stableStringify } from '../embedding/cache.js';
import type { FrameEmbedder } from '../embedding/frame-embedder.js';

// The tfjs backends asked for (`auto` takes tfjs-node, then wasm, then cpu): one table, in the tfjs layer.
import { BACKENDS, type BackendRequest } from '../tfjs/backends.js';
import type { EngineEntry, EngineSettings } from './entry.js';
import { onnx } from './onnx/engine.js';
import { tfjs } from './tfjs/engine.js';

export type { BackendRequest };
export type { EngineEntry, EngineSettings, EngineChoice } from './entry.js';

/**
 * The engines, by name, in the order `auto` tries them: the one list of them. The run
 * options, `--engine`'s help and `createFrameEmbedder()` read it; adding an engine is its
 * folder (with an `engine.ts` entry) plus its line here.
 */
export const ENGINES = new Registry('engine', { onnx, tfjs } satisfies Record<string, EngineEntry>);

export type EngineName = NameOf<typeof ENGINES>;
/** The engine asked for: `auto` takes the first in `ENGINES` that loads and runs the backbone. */
export type EngineRequest = 'auto' | EngineName;

/** A registry name (not a path, URL or spec object): only these have a memo. */
function isRegistryName(backbone: BackboneSpec): backbone is string {
  return typeof backbone === 'string' && /^[a-z0-9_]+$/i.test(backbone);
}

/**
 * Where the engine factory remembers what a named backbone is (id, size, D) once it has loaded it,
 * so that a run served wholly from the embedding cache never loads tfjs or the weights.
 * Keyed by the name, the nsfwjs version that ships the weights and framewise's version (which
 * makes the id); a memo that is wrong all the same is corrected by the load that finds it out.
 */
function memoFile(cacheDir: string, name: string): string {
  const key = createHash('sha256')
    .update(stableStringify({ name, nsfwjs: nsfwjsVersion(), framewise: FRAMEWISE_VERSION, v: 1 }))
    .digest('hex')
    .slice(0, 16);
  return join(cacheDir, 'backbone-ids', `${name}-${key}.json`);
}

/**
 * Stands in for the embedder until it is needed: it knows the backbone's id, size and D, and
 * loads the real one on `prepare()` (the runner calls it at the first video that misses the
 * cache, so the load overlaps that video's decoding) or on the first `embedClips`. A run whose
 * videos all come from the cache never loads tfjs.
 */
class LazyEmbedder implements FrameEmbedder {
  private loading?: Promise<FrameEmbedder>;
  private real?: FrameEmbedder;
  constructor(
    private readonly known: BackboneInfo,
    private readonly load: () => Promise<FrameEmbedder>,
    /** Corrects the memo when the backbone loaded is another. */
    private readonly remember: (real: FrameEmbedder) => Promise<void>,
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
  get engine(): { name: string; reason: string } {
    return (
      this.real?.engine ?? { name: 'none', reason: 'not loaded: every embedding so far came from the cache' }
    );
  }
  get backend(): { name: string; reason: string } | undefined {
    return this.real?.backend;
  }
  /** Starts loading now (idempotent), so the load overlaps decoding; errors surface in `embedClips`. */
  prepare(): void {
    if (this.loading) return;
    this.loading = this.load().then(async (real) => {
      this.real = real;
      if (real.backboneId !== this.known.id || real.dim !== this.known.dim) {
        // This run looked its cache up under the remembered id: it stops, and the next one starts right.
        await this.remember(real);
        throw new ModelError(
          `The backbone loaded (${real.backboneId}) is not the one remembered (${this.known.id}); the memo is corrected, run again`,
        );
      }
      return real;
    });
    this.loading.catch(() => undefined); // awaited in embedClips
  }
  async embedClips(
    data: Uint8Array,
    shape: [number, number, number, number, 3],
    options?: { signal?: AbortSignal; transfer?: boolean },
  ): Promise<Float32Array> {
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

/**
 * The engine, and the tfjs backend when tfjs ran, from what ran the backbone: the runners and
 * the cache name the tfjs backend (`wasm`) when tfjs ran and the engine (`onnx`) otherwise.
 */
export function engineOf(ranOn: string | undefined): { engine?: string; backend?: string } {
  if (!ranOn) return {};
  return BACKENDS.has(ranOn) ? { engine: 'tfjs', backend: ranOn } : { engine: ranOn };
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
  const settings: EngineSettings = {
    backbone,
    cacheDir: options.cacheDir,
    backend:
      options.backend === undefined ? 'auto' : BACKENDS.check('backend', options.backend, { auto: true }),
    workers:
      options.workers === undefined
        ? undefined
        : nonNegativeInteger('workers', options.workers, LIMITS.parallel),
    intraOpThreads:
      options.intraOpThreads === undefined
        ? undefined
        : positiveInteger('intraOpThreads', options.intraOpThreads, LIMITS.parallel),
    onPrepare: options.onPrepare,
    signal: checkSignal('signal', options.signal),
  };
  const engine =
    options.engine === undefined ? 'auto' : ENGINES.check('engine', options.engine, { auto: true });
  return openFrameEmbedder({ ...settings, engine, lazy: options.lazy === true });
}

/**
 * `createFrameEmbedder()` for settings resolved already (a runner's, from the run options):
 * they are not checked again.
 */
export async function openFrameEmbedder(
  settings: EngineSettings & { engine: EngineRequest; lazy: boolean },
): Promise<FrameEmbedder> {
  const { engine, lazy, backbone } = settings;
  const engines = ENGINES.entries();
  for (const [name, entry] of engines) {
    const what = entry.only?.(backbone);
    if (what && engine !== 'auto' && engine !== name)
      throw conflict('backbone', 'engine', `${what} runs on the ${name} engine, not on ${engine}`);
  }
  const load = async (): Promise<FrameEmbedder> => {
    const sole = engines.find(([, entry]) => entry.only?.(backbone));
    // A backbone only one engine runs has no fallback; a named engine is the answer; `auto` tries them in order.
    const tries = sole
      ? [sole]
      : engine === 'auto'
        ? engines.filter(([, entry]) => entry.runs(backbone))
        : engines.filter(([name]) => name === engine);
    if (tries.length === 0) throw new ModelError(`No engine runs this backbone (engine ${engine})`);
    // The last one, an engine asked for by name, a stopped run or a wrong setting: that is the answer.
    return ENGINES.firstThatLoads(
      (_, entry, because) => entry.create(settings, { request: engine, ...(because ? { because } : {}) }),
      {
        names: tries.map(([name]) => name),
        fatal: (error) => engine !== 'auto' || settings.signal?.aborted === true || isOptionError(error),
      },
    );
  };
  // The memo sits with the backbone cache, which is used even when the embedding cache is off.
  const memo = isRegistryName(backbone)
    ? memoFile(settings.cacheDir ?? defaultCacheDir(), backbone)
    : undefined;
  const remember = async (embedder: FrameEmbedder): Promise<void> => {
    if (!memo || !embedder.backbone) return;
    try {
      await mkdir(join(memo, '..'), { recursive: true });
      await writeFileAtomic(memo, Buffer.from(JSON.stringify(embedder.backbone)));
    } catch (error) {
      debug('stages: could not write %s: %s', memo, (error as Error).message);
    }
  };
  if (memo && lazy) {
    try {
      const known = JSON.parse(await readFile(memo, 'utf8')) as BackboneInfo;
      if (known.id && known.dim > 0 && known.inputSize > 0) {
        debug('stages: %s known from %s; loading it only if needed', known.id, memo);
        return new LazyEmbedder(known, load, remember);
      }
    } catch {
      /* no memo yet */
    }
  }
  const embedder = await load();
  await remember(embedder);
  return embedder;
}
