/**
 * The fast path's plumbing: which artifacts the inference workers (or the in-process
 * embedder) run, and how a backbone is rebuilt from artifacts.
 *
 * - A LayersModel backbone runs with its BatchNormalization folded into the convolutions
 *   (`src/tfjs/fold.ts`, cached on disk beside the backbone, so the rewrite runs once per
 *   backbone).
 * - A GraphModel backbone runs as it is (tfjs-converter already folds BN at conversion).
 */
import { tf } from '../../tfjs/tf.js';
import { ModelError } from '../../errors.js';
import { checkSignal } from '../../validate.js';
import type { BackboneInfo, CustomBackbone } from '../../embedding/backbone-spec.js';
import type { LoadedBackbone } from '../../tfjs/registry.js';
import { foldedArtifacts } from '../../tfjs/fold.js';
import { layersModelFromArtifacts, modelToArtifacts, readArtifacts } from '../../tfjs/artifacts.js';

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

/**
 * What a worker loads for `backbone`: the folded LayersModel (cached), the LayersModel as it
 * is when `fold` is false, or a GraphModel re-read from its source.
 */
export async function backboneArtifacts(
  backbone: LoadedBackbone,
  options: BackboneArtifactsOptions = {},
): Promise<BackboneArtifacts> {
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
  return {
    artifacts: await modelToArtifacts(backbone.layersModel!),
    format: 'layers',
    folded: false,
    fromCache: false,
  };
}

/**
 * A `LoadedBackbone` built from artifacts: what a worker runs, and what the in-process
 * embedder runs on the fast path. The caller owns it.
 */
export async function backboneFromArtifacts(
  info: BackboneInfo,
  source: Pick<BackboneArtifacts, 'artifacts' | 'format'>,
): Promise<LoadedBackbone> {
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
  return {
    ...base,
    kind: 'layers',
    layersModel: model,
    embed: (x) => model.predict(x) as tf.Tensor2D,
    dispose: () => model.dispose(),
  };
}
