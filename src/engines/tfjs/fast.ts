/**
 * The fast path's plumbing: which artifacts the inference workers (or the in-process
 * embedder) run, and how a backbone is rebuilt from artifacts.
 *
 * - A LayersModel backbone runs with its BatchNormalization folded into the convolutions
 *   (`fold.ts`). The folded model is cached on disk beside the backbone, under
 *   `<cacheDir>/backbones/<id>-folded/`, so the rewrite runs once per backbone. Its
 *   `folded.json` records the hash of its content, checked on every read. The backbone id
 *   does not change: the folded model gives the same features within 1e-4, so caches
 *   keyed by the id stay valid.
 * - A GraphModel backbone runs as it is (tfjs-converter already folds BN at conversion).
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { tf } from '../../tfjs/tf.js';
import { ModelError } from '../../errors.js';
import { debug } from '../../log.js';
import { checkSignal } from '../../validate.js';
import { defaultCacheDir } from '../../fs.js';
import type { BackboneInfo, CustomBackbone } from '../../embedding/backbone-spec.js';
import type { LoadedBackbone } from '../../tfjs/registry.js';
import { foldBatchNorm } from './fold.js';
import { hashArtifacts, layersModelFromArtifacts, modelToArtifacts, readArtifacts, weightBytes, writeArtifacts } from '../../tfjs/artifacts.js';

/** A backbone in the form a worker can load: serialised, plus what it is. */
export interface BackboneArtifacts {
  artifacts: tf.io.ModelArtifacts;
  format: 'layers' | 'graph';
  /** True when BatchNormalization was folded. */
  folded: boolean;
  /** True when the folded model came from the disk cache. */
  fromCache: boolean;
}

export interface BackboneArtifactsOptions {
  /**
   * Fold BatchNormalization into the convolutions (LayersModel backbones).
   * @default true
   */
  fold?: boolean;
  /** @default `FRAMEWISE_CACHE` or `~/.cache/framewise` */
  cacheDir?: string;
  signal?: AbortSignal;
}

/** Bump when the folded files change meaning. */
const FOLD_FORMAT = 1;

function contentHash(artifacts: tf.io.ModelArtifacts): string {
  return hashArtifacts(artifacts.modelTopology, weightBytes(artifacts));
}

/** The folded backbone's artifacts, from the cache or folded now (and cached). */
export async function foldedArtifacts(
  backbone: LoadedBackbone,
  options: { cacheDir?: string; signal?: AbortSignal } = {},
): Promise<{ artifacts: tf.io.ModelArtifacts; fromCache: boolean }> {
  const signal = checkSignal('signal', options.signal);
  if (!backbone.layersModel) throw new ModelError(`backbone ${backbone.id} is not a LayersModel; only LayersModels fold`);
  const dir = path.join(options.cacheDir ?? defaultCacheDir(), 'backbones', `${backbone.id}-folded`);
  try {
    const meta = JSON.parse(await readFile(path.join(dir, 'folded.json'), 'utf8')) as { source?: string; hash?: string; format?: number };
    const artifacts = await readArtifacts(dir, { signal });
    if (meta.format !== FOLD_FORMAT || meta.source !== backbone.id || meta.hash !== contentHash(artifacts)) {
      throw new Error(`folded cache entry ${dir} does not match its record`);
    }
    debug('fold: %s from cache', backbone.id);
    return { artifacts, fromCache: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') debug('fold: cache miss for %s: %s', backbone.id, (error as Error).message);
  }
  signal?.throwIfAborted();
  const t0 = Date.now();
  const result = await foldBatchNorm(backbone.layersModel, { signal });
  let artifacts: tf.io.ModelArtifacts;
  try {
    artifacts = await modelToArtifacts(result.model);
  } finally {
    result.model.dispose();
  }
  debug('fold: %s folded %d BN layers in %d ms (max diff %s)', backbone.id, result.folded.length, Date.now() - t0, result.maxAbsDiff);
  try {
    const meta = { format: FOLD_FORMAT, source: backbone.id, hash: contentHash(artifacts), folded: result.folded.length, kept: result.kept, maxAbsDiff: result.maxAbsDiff };
    await mkdir(path.dirname(dir), { recursive: true });
    await writeArtifacts(dir, artifacts, { 'folded.json': JSON.stringify(meta) });
  } catch (error) {
    // A read-only or full cache costs a fold per run, not correctness.
    debug('fold: cache write failed: %s', (error as Error).message);
  }
  return { artifacts, fromCache: false };
}

/**
 * What a worker loads for `backbone`: the folded LayersModel (cached), the LayersModel as it
 * is when `fold` is false, or a GraphModel re-read from its source.
 */
export async function backboneArtifacts(backbone: LoadedBackbone, options: BackboneArtifactsOptions = {}): Promise<BackboneArtifacts> {
  const signal = checkSignal('signal', options.signal);
  if (backbone.kind === 'graph') {
    const spec = backbone.spec as CustomBackbone;
    const artifacts = await readArtifacts((spec.url ?? spec.path) as string, { signal });
    return { artifacts, format: 'graph', folded: false, fromCache: false };
  }
  if (options.fold ?? true) {
    const { artifacts, fromCache } = await foldedArtifacts(backbone, { cacheDir: options.cacheDir, signal });
    return { artifacts, format: 'layers', folded: true, fromCache };
  }
  return { artifacts: await modelToArtifacts(backbone.layersModel!), format: 'layers', folded: false, fromCache: false };
}

/**
 * A `LoadedBackbone` built from artifacts: what a worker runs, and what the in-process
 * embedder runs on the fast path. The caller owns it.
 */
export async function backboneFromArtifacts(info: BackboneInfo, source: Pick<BackboneArtifacts, 'artifacts' | 'format'>): Promise<LoadedBackbone> {
  const base = { ...info, fromCache: true };
  if (source.format === 'graph') {
    const graph = await tf.loadGraphModel(tf.io.fromMemory(source.artifacts));
    const layer = (info.spec as CustomBackbone).embeddingLayer;
    const embed = (x: tf.Tensor4D) => (layer ? graph.execute(x, layer) : graph.predict(x)) as tf.Tensor2D;
    return { ...base, kind: 'graph', graphModel: graph, embed, dispose: () => graph.dispose() };
  }
  const model = await layersModelFromArtifacts(source.artifacts);
  const dim = model.outputs[0].shape[1];
  if (dim !== info.dim) {
    model.dispose();
    throw new ModelError(`backbone ${info.id}: the model gives ${dim} features, its record says ${info.dim}`);
  }
  return { ...base, kind: 'layers', layersModel: model, embed: (x) => model.predict(x) as tf.Tensor2D, dispose: () => model.dispose() };
}
