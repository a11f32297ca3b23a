/**
 * The seam between the pipeline and the ingest and model modules: every call the runners
 * make into them goes through here, in the shapes the runners use.
 */
import { stat } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { discover } from '../ingest/discover.js';
import { extractClips } from '../ingest/extract.js';
import { planClips } from '../ingest/sampling.js';
import { probe } from '../ingest/probe.js';
import { createEmbedder } from '../model/embedder.js';
import { loadModel } from '../model/model-files.js';
import type { ModelInfo as SavedModelInfo } from '../model/classifier.js';
import type { VideoEntry } from '../ingest/types.js';
import type { IngestStages } from './engine.js';
import type { BackboneSpec } from './options.js';
import type { EmbedderLike } from './types.js';

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
    throw new TypeError(`Expected a path or a non-empty array of paths for \`inputs\` but received ${JSON.stringify(inputs)}`);
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

/** Loads the backbone as a `FrameEmbedder`. */
export async function createBackbone(options: {
  backbone: BackboneSpec;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  cacheDir?: string;
  workers?: number;
  signal?: AbortSignal;
}): Promise<EmbedderLike> {
  return createEmbedder({ ...options, backbone: options.backbone as Parameters<typeof createEmbedder>[0] extends infer O ? (O extends { backbone?: infer B } ? B : never) : never });
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
  return loadModel(dir, { backend: options.backend, signal: options.signal });
}
