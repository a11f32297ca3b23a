/**
 * The seam between the pipeline and the ingest and model modules: every call the runners
 * make into them goes through here, in the shapes the runners use.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import type { BackboneInfo } from './tfjs/registry.js';
import { ModelError } from '../errors.js';
import { debug } from '../log.js';
import { writeFileAtomic } from '../output/npy.js';
import { defaultCacheDir, stableStringify } from '../embedding/cache.js';
import { UsageError } from '../errors.js';
import { invalid } from '../validate.js';
import { discover } from '../ingest/discover.js';
import { extractClips } from '../ingest/extract.js';
import { planClips } from '../ingest/sampling.js';
import { probe } from '../ingest/probe.js';
import type { ModelInfo as SavedModelInfo } from '../model/classifier.js';
import type { VideoEntry } from '../ingest/types.js';
import type { IngestStages } from '../embedding/local-runner.js';
import type { BackboneSpec } from '../tasks/options.js';
import type { EmbedderLike } from '../embedding/frame-embedder.js';

/** One video to process, with what a dataset says about it (ingest's `VideoEntry`). */
export type InputEntry = VideoEntry;

export const ingestStages: IngestStages = {
  probe: (path, options) => probe(path, options),
  planClips: (p, sampling) => planClips(p, sampling),
  extractClips: (path, plans, options) => extractClips(path, plans, options),
};

/**
 * Discovers the videos of `inputs` (files, folders, manifests). Input errors (a path that
 * does not exist, nothing to process) are `UsageError`s, raised before any work.
 */
export async function discoverInputs(inputs: string | string[], options: { signal?: AbortSignal } = {}): Promise<InputEntry[]> {
  const list = typeof inputs === 'string' ? [inputs] : inputs;
  if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'string' || x.length === 0)) {
    throw invalid('inputs', 'a path or a non-empty array of paths', inputs);
  }
  for (const input of list) {
    try {
      await stat(input);
    } catch {
      throw new UsageError(`Input ${input} does not exist`);
    }
  }
  const entries: InputEntry[] = await discover(list, options);
  if (entries.length === 0) throw new UsageError(`No videos found in ${list.join(', ')}`);
  return entries;
}

const require = createRequire(import.meta.url);

function nsfwjsVersion(): string {
  try {
    const main = require.resolve('nsfwjs');
    return JSON.parse(readFileSync(join(main.slice(0, main.lastIndexOf(`${sep}dist${sep}`)), 'package.json'), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

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
class LazyEmbedder implements EmbedderLike {
  private loading?: Promise<EmbedderLike>;
  private real?: EmbedderLike;
  constructor(
    private readonly known: BackboneInfo,
    private readonly load: () => Promise<EmbedderLike>,
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

/** Loads the backbone as a `FrameEmbedder` (lazily when a cached run may not need it). */
export async function createBackbone(options: {
  backbone: BackboneSpec;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  cacheDir?: string;
  workers?: number;
  signal?: AbortSignal;
  /** Allow a stand-in that loads on first use. @default false */
  lazy?: boolean;
}): Promise<EmbedderLike> {
  const load = async (): Promise<EmbedderLike> => {
    const { createEmbedder } = await import('./tfjs/embedder.js');
    const { lazy: _lazy, ...rest } = options;
    return createEmbedder({ ...rest, backbone: rest.backbone as Parameters<typeof createEmbedder>[0] extends infer O ? (O extends { backbone?: infer B } ? B : never) : never });
  };
  // The memo sits with the backbone cache, which is used even when the embedding cache is off.
  const memo = isRegistryName(options.backbone) ? memoFile(options.cacheDir ?? defaultCacheDir(), options.backbone) : undefined;
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

/** The contents of a model's framewise.json. */
export type ModelInfo = SavedModelInfo;

/** A loaded head: embeddings [B, T, D] + mask [B*T] → probabilities [B, C] (clip) or [B, T, C] (frame). */
export interface HeadLike {
  info: ModelInfo;
  predict(embeddings: Float32Array, shape: [number, number, number], mask: Uint8Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Loads a model folder's head (a ModelError when it is missing or damaged). */
export async function loadHead(dir: string, options: { backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu'; signal?: AbortSignal }): Promise<HeadLike> {
  const { loadModel } = await import('../model/model-files.js');
  return loadModel(dir, { backend: options.backend, signal: options.signal });
}
