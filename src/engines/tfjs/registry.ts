/**
 * The backbone registry: named pretrained CNNs (shipped inside the `nsfwjs` package) and
 * custom tfjs models, each cut at its pooled embedding layer, identified by a stable id
 * (name + hash of topology and weights), and cached on disk as a plain tfjs model.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { tf } from './tf.js';
import { ModelError } from '../../errors.js';
import { debug } from '../../log.js';
import { checkSignal, invalid, isPlainObject, nonEmptyString, optionError, positiveInteger, positiveNumber } from '../../validate.js';
import { selectBackend, type BackendRequest } from './backend.js';
import { hashArtifacts, layersModelFromArtifacts, modelToArtifacts, readArtifacts, weightBytes, writeArtifacts } from './artifacts.js';

/** How uint8 RGB maps to the backbone's input range. `{mean, std}` are on the [0, 1] scale. */
export type Normalization = '0..1' | '-1..1' | { mean: number | [number, number, number]; std: number | [number, number, number] };

/** A user-supplied tfjs LayersModel or GraphModel. */
export interface CustomBackbone {
  /** A name for ids and messages. @default 'custom' */
  name?: string;
  /** URL of model.json (or its folder). Exactly one of `url` and `path`. */
  url?: string;
  /** Folder holding model.json, or the model.json path. */
  path?: string;
  /** Frames are resized to inputSize x inputSize. */
  inputSize: number;
  normalize: Normalization;
  /** Layer name (LayersModel) or node name (GraphModel) whose output is the [N, D] embedding. @default the model's output */
  embeddingLayer?: string;
}

/** What is recorded about a backbone in saved models and output metadata. */
export interface BackboneInfo {
  /** Stable id: name + short hash of topology and weights. */
  id: string;
  name: string;
  inputSize: number;
  dim: number;
  normalize: Normalization;
  /** The spec it was loaded from: a registry name or the custom spec. */
  spec: string | CustomBackbone;
}

/** A loaded, cut backbone. `embed` takes normalised float frames [N, S, S, 3] and gives [N, D]. */
export interface LoadedBackbone extends BackboneInfo {
  readonly kind: 'layers' | 'graph';
  /** Set for LayersModel backbones (the cut model). */
  readonly layersModel?: tf.LayersModel;
  readonly graphModel?: tf.GraphModel;
  /** True when it came from the disk cache. */
  readonly fromCache: boolean;
  /** Synchronous; call inside `tf.tidy`. */
  embed(frames: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

interface RegistryEntry {
  nsfwjsName: 'MobileNetV2' | 'InceptionV3';
  inputSize: number;
  dim: number;
  normalize: Normalization;
  layer: string;
}

/** Named backbones; their weights ship in the `nsfwjs` npm package, so nothing is downloaded. */
export const BACKBONES: Readonly<Record<string, Readonly<RegistryEntry>>> = {
  mobilenet_v2: { nsfwjsName: 'MobileNetV2', inputSize: 224, dim: 1280, normalize: '0..1', layer: 'flatten_1' },
  inception_v3: { nsfwjsName: 'InceptionV3', inputSize: 299, dim: 2048, normalize: '0..1', layer: 'flatten_1' },
};
export const DEFAULT_BACKBONE = 'mobilenet_v2';

/** Bump when the cached files change meaning. */
const CACHE_FORMAT = 1;
const require = createRequire(import.meta.url);

/** `FRAMEWISE_CACHE`, else `~/.cache/framewise`. */
export function defaultCacheDir(): string {
  return process.env.FRAMEWISE_CACHE || path.join(os.homedir(), '.cache', 'framewise');
}

/** Per-channel `scale` and `offset` so that `y = x * scale + offset` for uint8 `x`. */
export function normalizationParams(normalize: Normalization): { scale: number[]; offset: number[] } {
  if (normalize === '0..1') return { scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] };
  if (normalize === '-1..1') return { scale: [2 / 255, 2 / 255, 2 / 255], offset: [-1, -1, -1] };
  const mean = typeof normalize.mean === 'number' ? [normalize.mean, normalize.mean, normalize.mean] : normalize.mean;
  const std = typeof normalize.std === 'number' ? [normalize.std, normalize.std, normalize.std] : normalize.std;
  return { scale: std.map((s) => 1 / (255 * s)), offset: mean.map((m, i) => -m / std[i]) };
}

/**
 * The one place frames are normalised: uint8-valued [..., 3] (any dtype) -> float32 in the
 * backbone's range. Synchronous, tidy.
 */
export function normalizeFrames<T extends tf.Tensor>(frames: T, normalize: Normalization): T {
  const { scale, offset } = normalizationParams(normalize);
  return tf.tidy(() => tf.add(tf.mul(tf.cast(frames, 'float32'), tf.tensor1d(scale)), tf.tensor1d(offset)) as T);
}

function validateNormalization(field: string, value: unknown): Normalization {
  if (value === '0..1' || value === '-1..1') return value;
  if (isPlainObject(value)) {
    for (const key of ['mean', 'std'] as const) {
      const v = value[key];
      const ok = typeof v === 'number' || (Array.isArray(v) && v.length === 3 && v.every((n) => typeof n === 'number'));
      if (!ok) throw invalid(`${field}.${key}`, 'a number or an array of 3 numbers', v);
    }
    const std = value.std as number | number[];
    for (const s of Array.isArray(std) ? std : [std]) positiveNumber(`${field}.std`, s);
    return value as Normalization;
  }
  throw invalid(field, "'0..1', '-1..1' or {mean, std}", value);
}

/** Validates a backbone option at the boundary. */
export function validateBackboneSpec(field: string, value: unknown): string | CustomBackbone {
  if (value === undefined) return DEFAULT_BACKBONE;
  if (typeof value === 'string') {
    if (!Object.hasOwn(BACKBONES, value)) {
      throw invalid(field, `one of ${Object.keys(BACKBONES).map((n) => `'${n}'`).join(', ')} or a custom backbone object`, value);
    }
    return value;
  }
  if (!isPlainObject(value)) throw invalid(field, 'a backbone name or a custom backbone object', value);
  if ((value.url === undefined) === (value.path === undefined)) {
    throw optionError(`Expected exactly one of \`${field}.url\` and \`${field}.path\``);
  }
  if (value.url !== undefined) nonEmptyString(`${field}.url`, value.url);
  if (value.path !== undefined) nonEmptyString(`${field}.path`, value.path);
  if (value.name !== undefined) nonEmptyString(`${field}.name`, value.name);
  if (value.embeddingLayer !== undefined) nonEmptyString(`${field}.embeddingLayer`, value.embeddingLayer);
  positiveInteger(`${field}.inputSize`, value.inputSize);
  validateNormalization(`${field}.normalize`, value.normalize);
  return value as unknown as CustomBackbone;
}

function nsfwjsVersion(): string {
  try {
    const main = require.resolve('nsfwjs');
    const pkg = path.join(main.slice(0, main.lastIndexOf(`${path.sep}dist${path.sep}`)), 'package.json');
    return JSON.parse(readFileSync(pkg, 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

function makeId(name: string, artifacts: tf.io.ModelArtifacts, extra = ''): string {
  const hash = hashArtifacts({ topology: artifacts.modelTopology, extra }, weightBytes(artifacts));
  return `${name}-${hash.slice(0, 12)}`;
}

function layersBackbone(
  info: Omit<BackboneInfo, 'dim'>,
  model: tf.LayersModel,
  fromCache: boolean,
): LoadedBackbone {
  const out = model.outputs[0].shape;
  const dim = out[1] as number;
  return {
    ...info,
    dim,
    kind: 'layers',
    layersModel: model,
    fromCache,
    embed: (frames) => model.predict(frames) as tf.Tensor2D,
    dispose: () => model.dispose(),
  };
}

/** Loads a named backbone through nsfwjs's public `load()`, cut at its pooled layer. */
async function loadNamedSlow(name: string, entry: RegistryEntry): Promise<tf.io.ModelArtifacts> {
  const { load } = await import('nsfwjs');
  // nsfwjs announces the model it loads with console.info; a library never prints.
  const info = console.info;
  console.info = () => {};
  let nsfw: Awaited<ReturnType<typeof load>>;
  try {
    nsfw = await load(entry.nsfwjsName, { size: entry.inputSize });
  } finally {
    console.info = info;
  }
  try {
    const full = (nsfw as unknown as { model: tf.LayersModel }).model;
    const cut = tf.model({ inputs: full.inputs, outputs: full.getLayer(entry.layer).output, name: `framewise_${name}` });
    return await modelToArtifacts(cut);
  } finally {
    nsfw.dispose();
  }
}

async function readJson(file: string): Promise<any> {
  return JSON.parse(await readFile(file, 'utf8'));
}

async function loadNamed(name: string, cacheDir: string, signal?: AbortSignal): Promise<LoadedBackbone> {
  const entry = BACKBONES[name];
  const root = path.join(cacheDir, 'backbones');
  // The id needs the weights, so a small index file maps "what we would load" to the id.
  const sourceKey = `${name}-nsfwjs${nsfwjsVersion()}-v${CACHE_FORMAT}`;
  const indexFile = path.join(root, `${sourceKey}.json`);
  const base = { name, inputSize: entry.inputSize, normalize: entry.normalize, spec: name };
  try {
    const { id } = await readJson(indexFile);
    const artifacts = await readArtifacts(path.join(root, id));
    // Guard against a damaged or foreign cache entry: the content must hash to its id.
    if (makeId(name, artifacts) !== id) throw new Error(`cache entry ${id} does not match its id`);
    const model = await layersModelFromArtifacts(artifacts);
    debug('backbone %s: loaded from cache %s', id, path.join(root, id));
    return layersBackbone({ ...base, id }, model, true);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') debug('backbone cache miss for %s: %s', name, (error as Error).message);
  }
  signal?.throwIfAborted();
  const t0 = Date.now();
  const artifacts = await loadNamedSlow(name, entry);
  const id = makeId(name, artifacts);
  debug('backbone %s: built from nsfwjs in %d ms', id, Date.now() - t0);
  try {
    await writeArtifacts(path.join(root, id), artifacts, {
      'backbone.json': JSON.stringify({ id, name, inputSize: entry.inputSize, dim: entry.dim, normalize: entry.normalize }),
    });
    const tmpIndex = `${indexFile}.${process.pid}.tmp`;
    await mkdir(root, { recursive: true });
    await writeFile(tmpIndex, JSON.stringify({ id }));
    await rename(tmpIndex, indexFile);
  } catch (error) {
    // A read-only or full cache folder costs speed, not correctness.
    debug('backbone cache write failed: %s', (error as Error).message);
  }
  const model = await layersModelFromArtifacts(artifacts);
  return layersBackbone({ ...base, id }, model, false);
}

function fmt(shape: ReadonlyArray<number | null>): string {
  return `[${shape.map((d) => (d === null || d === -1 ? '?' : d)).join(', ')}]`;
}

function checkInputShape(spec: CustomBackbone, shape: ReadonlyArray<number | null>): void {
  const [, h, w, c] = shape;
  const ok =
    shape.length === 4 &&
    (c === null || c === 3 || c === -1) &&
    (h === null || h === -1 || h === spec.inputSize) &&
    (w === null || w === -1 || w === spec.inputSize);
  if (!ok) {
    throw new ModelError(
      `custom backbone '${spec.name ?? 'custom'}': its input shape ${fmt(shape)} does not accept ` +
        `[batch, ${spec.inputSize}, ${spec.inputSize}, 3] frames (inputSize ${spec.inputSize})`,
    );
  }
}

function checkEmbeddingShape(spec: CustomBackbone, shape: ReadonlyArray<number | null>): number {
  if (shape.length !== 2 || typeof shape[1] !== 'number' || shape[1] < 1) {
    throw new ModelError(
      `custom backbone '${spec.name ?? 'custom'}': the embedding ${spec.embeddingLayer ? `layer '${spec.embeddingLayer}'` : 'output'} ` +
        `has shape ${fmt(shape)}, expected [batch, D]; choose a pooled or flattened layer with \`embeddingLayer\``,
    );
  }
  return shape[1];
}

async function loadCustom(spec: CustomBackbone, signal?: AbortSignal): Promise<LoadedBackbone> {
  const source = (spec.url ?? spec.path) as string;
  const name = spec.name ?? 'custom';
  const artifacts = await readArtifacts(source, { signal });
  const id = makeId(name, artifacts, spec.embeddingLayer ?? '');
  const base = { id, name, inputSize: spec.inputSize, normalize: spec.normalize, spec };
  if (artifacts.format === 'graph-model') {
    const graph = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
    try {
      const input = graph.inputs[0];
      if (graph.inputs.length !== 1 || !input.shape) throw new ModelError(`custom backbone '${name}': expected one image input`);
      checkInputShape(spec, input.shape);
      const run = (x: tf.Tensor4D) =>
        (spec.embeddingLayer ? graph.execute(x, spec.embeddingLayer) : graph.predict(x)) as tf.Tensor2D;
      const probe = tf.tidy(() => run(tf.zeros([1, spec.inputSize, spec.inputSize, 3])));
      const dim = checkEmbeddingShape(spec, [null, ...probe.shape.slice(1)]);
      probe.dispose();
      return { ...base, dim, kind: 'graph', graphModel: graph, fromCache: false, embed: run, dispose: () => graph.dispose() };
    } catch (error) {
      graph.dispose();
      throw error instanceof ModelError ? error : new ModelError(`custom backbone '${name}': ${(error as Error).message}`, { cause: error });
    }
  }
  const full = await layersModelFromArtifacts(artifacts);
  try {
    if (full.inputs.length !== 1) throw new ModelError(`custom backbone '${name}': expected one image input, found ${full.inputs.length}`);
    checkInputShape(spec, full.inputs[0].shape);
    let model = full;
    if (spec.embeddingLayer) {
      let layer: tf.layers.Layer;
      try {
        layer = full.getLayer(spec.embeddingLayer);
      } catch {
        throw new ModelError(
          `custom backbone '${name}': no layer named '${spec.embeddingLayer}' (last layers: ${full.layers.slice(-5).map((l) => l.name).join(', ')})`,
        );
      }
      model = tf.model({ inputs: full.inputs, outputs: layer.output as tf.SymbolicTensor, name: `framewise_${name}` });
    }
    checkEmbeddingShape(spec, model.outputs[0].shape);
    return layersBackbone(base, model, false);
  } catch (error) {
    full.dispose();
    throw error;
  }
}

export interface LoadBackboneOptions {
  /** Cache folder. @default `FRAMEWISE_CACHE` or `~/.cache/framewise` */
  cacheDir?: string;
  /** @default 'auto' */
  backend?: BackendRequest;
  signal?: AbortSignal;
}

/**
 * Loads a backbone, cut at its embedding layer. Named backbones come from the disk cache when
 * possible (well under 2 s) and are built from nsfwjs and cached otherwise.
 */
export async function loadBackbone(
  backbone: string | CustomBackbone = DEFAULT_BACKBONE,
  options: LoadBackboneOptions = {},
): Promise<LoadedBackbone> {
  const spec = validateBackboneSpec('backbone', backbone);
  const signal = checkSignal('signal', options.signal);
  if (options.cacheDir !== undefined) nonEmptyString('cacheDir', options.cacheDir);
  await selectBackend(options.backend ?? 'auto', { signal });
  if (typeof spec === 'string') return loadNamed(spec, options.cacheDir ?? defaultCacheDir(), signal);
  return loadCustom(spec, signal);
}

/** The part of a loaded backbone that is recorded in files. */
export function backboneInfo(backbone: BackboneInfo): BackboneInfo {
  const { id, name, inputSize, dim, normalize, spec } = backbone;
  return { id, name, inputSize, dim, normalize, spec };
}
