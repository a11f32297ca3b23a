/**
 * Model folders: `model.json` + `weights.bin` (tfjs LayersModel format, loadable by
 * `tf.loadLayersModel`) and `framewise.json` (labels, mode, head, frames, sampling, backbone,
 * size, normalisation, metrics, version). Also the end-to-end export: one LayersModel
 * [T, S, S, 3] -> TimeDistributed(backbone) -> head, for use outside framewise.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tf } from '../tfjs/tf.js';
import { ModelError } from '../errors.js';
import { OUTPUT_DIRS, replaceDir } from '../fs.js';
import { debug } from '../log.js';
import { checkSignal, invalid, LIMITS, nonEmptyString, positiveInteger } from '../validate.js';
import { selectBackend, type BackendRequest } from '../tfjs/backend.js';
import { loadBackbone } from '../tfjs/registry.js';
import { normalizationParams, type BackboneInfo } from '../embedding/backbone-spec.js';
import { TfHeadClassifier, tfClassifier } from './classifier.js';
import type { HeadClassifier, ModelInfo } from './types.js';
import {
  artifactFiles,
  layersModelFromArtifacts,
  modelToArtifacts,
  readArtifacts,
  writeArtifacts,
} from '../tfjs/artifacts.js';
import { Normalize, TimeMask } from './layers.js';
import { TimeDistributed } from '../tfjs/time-distributed.js';
import { FRAMEWISE_VERSION } from '../version.js';
import { MODEL_INFO_FILE, readModelInfo } from './model-info.js';

export { MODEL_INFO_FILE, readModelInfo } from './model-info.js';

export interface SaveModelOptions {
  /** The backbone the embeddings came from. @default the one recorded at training */
  backbone?: BackboneInfo;
  /** Frames per clip. @default the training clips' T */
  frames?: number;
  /** The sampling that made the clips. @default the one recorded at training */
  sampling?: unknown;
  /** More fields for framewise.json (for example `fit`). */
  extra?: Record<string, unknown>;
  /** More files for the folder, by name (for example `history.csv`, `curves.png`). */
  files?: Record<string, string | Uint8Array>;
  signal?: AbortSignal;
}

/** The folder of an ensemble's member k (0-based) inside the model folder: the folder itself for the first. */
export function memberDir(k: number): string {
  return k === 0 ? '' : `member-${k + 1}`;
}

/** The size of the ensemble a framewise.json describes (1 for a single head). */
export function ensembleSize(info: Pick<ModelInfo, 'ensemble'>): number {
  const e = info.ensemble as { size?: unknown } | undefined;
  return typeof e?.size === 'number' && Number.isInteger(e.size) && e.size > 1 ? e.size : 1;
}

/**
 * Writes a classifier to `dir` (replaced atomically): model.json, weights.bin, framewise.json.
 * Returns the framewise.json contents.
 */
export async function saveModel(
  dir: string,
  classifier: HeadClassifier,
  options: SaveModelOptions = {},
): Promise<ModelInfo> {
  nonEmptyString('dir', dir);
  const head = tfClassifier(classifier);
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an options object', options);
  const signal = checkSignal('options.signal', options.signal);
  if (options.frames !== undefined) positiveInteger('options.frames', options.frames, LIMITS.frames);
  const b = options.backbone;
  const info: ModelInfo = {
    ...classifier.info,
    ...(options.extra ?? {}),
    ...(b
      ? {
          backbone: b.spec,
          backboneId: b.id,
          backboneName: b.name,
          size: b.inputSize,
          normalize: b.normalize,
        }
      : {}),
    ...(options.frames !== undefined ? { frames: options.frames } : {}),
    ...(options.sampling !== undefined ? { sampling: options.sampling } : {}),
    version: FRAMEWISE_VERSION,
  };
  if (!info.backboneId) {
    throw new ModelError(
      'saveModel: no backbone is recorded for this classifier; pass `backbone` (e.g. embedder.backbone)',
    );
  }
  const artifacts = await modelToArtifacts(head.model);
  // An ensemble's other members, each a LayersModel folder of its own inside this one.
  const members: Record<string, string | Uint8Array> = {};
  for (const [k, member] of head.members.entries()) {
    if (k === 0) continue;
    for (const [name, data] of Object.entries(artifactFiles(await modelToArtifacts(member))))
      members[path.join(memberDir(k), name)] = data;
  }
  signal?.throwIfAborted();
  const files = {
    ...(options.files ?? {}),
    ...members,
    [MODEL_INFO_FILE]: `${JSON.stringify(info, null, 2)}\n`,
  };
  await writeArtifacts(dir, artifacts, files, OUTPUT_DIRS.model);
  classifier.info = info;
  debug(
    'saveModel: %s (%s/%s, %d labels, backbone %s)',
    dir,
    info.head.type,
    info.mode,
    info.labels.length,
    info.backboneId,
  );
  return info;
}

/** Throws a ModelError naming both backbones when a model was trained on another one. */
export function checkCompatible(
  info: Pick<ModelInfo, 'backboneId' | 'dim'>,
  backbone: { id?: string; backboneId?: string; dim: number },
): void {
  const id = backbone.id ?? backbone.backboneId;
  if (id !== info.backboneId) {
    throw new ModelError(
      `this model was trained on backbone '${info.backboneId}', but the embeddings come from '${id}'`,
    );
  }
  if (backbone.dim !== info.dim) {
    throw new ModelError(
      `this model takes ${info.dim}-d embeddings, but backbone '${id}' gives ${backbone.dim}-d`,
    );
  }
}

export interface LoadModelOptions {
  /** When set, the model must have been trained on this backbone (id), else a ModelError names both. */
  backboneId?: string;
  /** @default 'auto' */
  backend?: BackendRequest;
  signal?: AbortSignal;
}

/** Loads a model folder written by `saveModel`. */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<HeadClassifier> {
  nonEmptyString('dir', dir);
  const signal = checkSignal('options.signal', options.signal);
  const info = await readModelInfo(dir);
  if (options.backboneId !== undefined) checkCompatible(info, { id: options.backboneId, dim: info.dim });
  await selectBackend(options.backend ?? 'auto', { signal });
  const models: tf.LayersModel[] = [];
  try {
    // An ensemble's members: the folder's own head, then member-2/ ... member-N/.
    for (let k = 0; k < ensembleSize(info); k++)
      models.push(await loadHead(path.join(dir, memberDir(k)), info, signal));
  } catch (error) {
    for (const m of models) m.dispose();
    throw error;
  }
  return new TfHeadClassifier(models, info);
}

/** One head's LayersModel from `dir`, checked against framewise.json's D and labels. */
async function loadHead(
  dir: string,
  info: ModelInfo,
  signal: AbortSignal | undefined,
): Promise<tf.LayersModel> {
  let model: tf.LayersModel;
  try {
    model = await layersModelFromArtifacts(await readArtifacts(dir, { signal }));
  } catch (error) {
    throw new ModelError(`cannot load the head in ${dir}: ${(error as Error).message}`, { cause: error });
  }
  const input = model.inputs[0]?.shape;
  if (!input || input[input.length - 1] !== info.dim) {
    model.dispose();
    throw new ModelError(
      `the head in ${dir} takes input [${input?.join(', ')}] but framewise.json says D = ${info.dim}`,
    );
  }
  // A label list of another length would shift every label: the head's output must have one unit per label.
  const output = model.outputs[0]?.shape;
  if (!output || output[output.length - 1] !== info.labels.length) {
    model.dispose();
    throw new ModelError(
      `the head in ${dir} gives ${output?.[output.length - 1]} scores but framewise.json lists ${info.labels.length} labels (${info.labels.join(', ')})`,
    );
  }
  return model;
}

/**
 * Makes `dir` a model folder in training (replacing what was there, atomically): a
 * framewise.json that says so, which `loadModel` refuses and `train --resume` goes on from.
 */
export async function startTrainingFolder(dir: string): Promise<void> {
  const marker = {
    format: 'framewise-model',
    formatVersion: 1,
    training: true,
    version: FRAMEWISE_VERSION,
    createdAt: new Date().toISOString(),
  };
  await replaceDir(dir, OUTPUT_DIRS.model, async (tmp) => {
    await writeFile(path.join(tmp, MODEL_INFO_FILE), `${JSON.stringify(marker, null, 2)}\n`);
  });
}

/** Whether `dir` is a model folder in training (framewise.json says `training: true`). */
export async function isTrainingFolder(dir: string): Promise<boolean> {
  try {
    const info = JSON.parse(await readFile(path.join(dir, MODEL_INFO_FILE), 'utf8')) as Record<
      string,
      unknown
    >;
    return info.format === 'framewise-model' && info.training === true;
  } catch {
    return false;
  }
}

export interface ExportOptions {
  /** Backbone cache folder. @default `FRAMEWISE_CACHE` or `~/.cache/framewise` */
  cacheDir?: string;
  /** Fix T in the exported input shape. @default variable T (null) */
  frames?: number;
  signal?: AbortSignal;
}

/**
 * Writes one LayersModel to `outDir`: input [B, T, S, S, 3] raw RGB values 0..255 (float) ->
 * time mask (an all-zero frame is padding) -> normalisation -> TimeDistributed(backbone) ->
 * the head. Plus framewise.json describing it (with `endToEnd: true`).
 */
export async function exportEndToEnd(
  modelDir: string,
  outDir: string,
  options: ExportOptions = {},
): Promise<ModelInfo> {
  nonEmptyString('modelDir', modelDir);
  nonEmptyString('outDir', outDir);
  const signal = checkSignal('options.signal', options.signal);
  if (options.frames !== undefined) positiveInteger('options.frames', options.frames, LIMITS.frames);
  const head = tfClassifier(await loadModel(modelDir, { signal }));
  const info = head.info;
  if (head.members.length > 1) {
    await head.dispose();
    throw new ModelError(
      `${modelDir} holds an ensemble of ${head.members.length} heads; the tfjs end-to-end export takes one: export it as ONNX (--format onnx), whose graph averages them`,
    );
  }
  let backbone;
  try {
    backbone = await loadBackbone(info.backbone, { cacheDir: options.cacheDir, signal });
  } catch (error) {
    await head.dispose();
    throw error;
  }
  let whole: tf.LayersModel | undefined;
  try {
    checkCompatible(info, backbone);
    if (!backbone.layersModel)
      throw new ModelError(
        `backbone '${backbone.id}' is a GraphModel; only LayersModel backbones can be exported end to end`,
      );
    const s = backbone.inputSize;
    const input = tf.input({ shape: [options.frames ?? null, s, s, 3], name: 'fw_frames' });
    let x = new TimeMask({ name: 'fw_time_mask' }).apply(input) as tf.SymbolicTensor; // mask [B, T]
    x = new Normalize({ ...normalizationParams(backbone.normalize), name: 'fw_normalize' }).apply(
      x,
    ) as tf.SymbolicTensor;
    x = new TimeDistributed({ layer: backbone.layersModel, name: 'fw_backbone' }).apply(
      x,
    ) as tf.SymbolicTensor; // [B, T, D]
    // The head's own layers after its input and embedding-masking layers; the time mask from
    // TimeMask flows through TimeDistributed to its recurrent layer.
    for (const layer of head.model.layers.slice(2)) x = layer.apply(x) as tf.SymbolicTensor;
    whole = tf.model({ inputs: input, outputs: x, name: 'framewise_end_to_end' });
    const artifacts = await modelToArtifacts(whole);
    signal?.throwIfAborted();
    const out: ModelInfo = {
      ...info,
      endToEnd: true,
      inputShape: [null, options.frames ?? null, s, s, 3],
      version: FRAMEWISE_VERSION,
    };
    await writeArtifacts(
      outDir,
      artifacts,
      { [MODEL_INFO_FILE]: `${JSON.stringify(out, null, 2)}\n` },
      OUTPUT_DIRS.model,
    );
    return out;
  } finally {
    // Disposing the backbone and head frees every weight `whole` shares with them.
    backbone.dispose();
    await head.dispose();
  }
}
