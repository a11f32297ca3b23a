/**
 * The backbone registry: named pretrained CNNs (shipped inside the `nsfwjs` package) and
 * custom tfjs models, each cut at its pooled embedding layer, identified by a stable id
 * (name + hash of topology and weights), and cached on disk as a plain tfjs model.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tf } from './tf.js';
import { ModelError } from '../errors.js';
import { debug } from '../log.js';
import { checkSignal, nonEmptyString, raceAbort, yieldTurn } from '../validate.js';
import { defaultCacheDir } from '../fs.js';
import {
  BACKBONES,
  DEFAULT_BACKBONE,
  normalizationParams,
  nsfwjsVersion,
  isOnnxBackbone,
  parseBackboneSpec,
  type BackboneInfo,
  type BackboneSpec,
  type CustomBackbone,
  type Normalization,
  type RegistryEntry,
} from '../embedding/backbone-spec.js';
import { selectBackend, type BackendRequest } from './backend.js';
import {
  hashArtifacts,
  layersModelFromArtifacts,
  modelToArtifacts,
  readArtifacts,
  weightBytes,
  writeArtifacts,
} from './artifacts.js';

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

/** Bump when the cached files change meaning. */
const CACHE_FORMAT = 1;

/**
 * The one place frames are normalised: uint8-valued [..., 3] (any dtype) -> float32 in the
 * backbone's range. Synchronous, tidy.
 */
export function normalizeFrames<T extends tf.Tensor>(frames: T, normalize: Normalization): T {
  const { scale, offset } = normalizationParams(normalize);
  return tf.tidy(
    () => tf.add(tf.mul(tf.cast(frames, 'float32'), tf.tensor1d(scale)), tf.tensor1d(offset)) as T,
  );
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
async function loadNamedSlow(
  name: string,
  entry: RegistryEntry,
  signal?: AbortSignal,
): Promise<tf.io.ModelArtifacts> {
  const { load } = await import('nsfwjs');
  // nsfwjs announces the model it loads with console.info; a library never prints.
  const info = console.info;
  console.info = () => {};
  const loading = load(entry.nsfwjsName, { size: entry.inputSize });
  void loading.finally(() => (console.info = info)).catch(() => undefined);
  let nsfw: Awaited<ReturnType<typeof load>>;
  try {
    // Seconds of parsing and building: a Ctrl-C meanwhile stops the wait, and the model is let go when it comes.
    nsfw = await raceAbort(loading, signal);
  } catch (error) {
    loading.then((model) => model.dispose()).catch(() => undefined);
    throw error;
  }
  try {
    await yieldTurn(signal);
    const full = (nsfw as unknown as { model: tf.LayersModel }).model;
    const cut = tf.model({
      inputs: full.inputs,
      outputs: full.getLayer(entry.layer).output,
      name: `framewise_${name}`,
    });
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
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      debug('backbone cache miss for %s: %s', name, (error as Error).message);
  }
  signal?.throwIfAborted();
  const t0 = Date.now();
  const artifacts = await loadNamedSlow(name, entry, signal);
  await yieldTurn(signal);
  const id = makeId(name, artifacts);
  debug('backbone %s: built from nsfwjs in %d ms', id, Date.now() - t0);
  try {
    await writeArtifacts(path.join(root, id), artifacts, {
      'backbone.json': JSON.stringify({
        id,
        name,
        inputSize: entry.inputSize,
        dim: entry.dim,
        normalize: entry.normalize,
      }),
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
      if (graph.inputs.length !== 1 || !input.shape)
        throw new ModelError(`custom backbone '${name}': expected one image input`);
      checkInputShape(spec, input.shape);
      const run = (x: tf.Tensor4D) =>
        (spec.embeddingLayer ? graph.execute(x, spec.embeddingLayer) : graph.predict(x)) as tf.Tensor2D;
      const probe = tf.tidy(() => run(tf.zeros([1, spec.inputSize, spec.inputSize, 3])));
      const dim = checkEmbeddingShape(spec, [null, ...probe.shape.slice(1)]);
      probe.dispose();
      return {
        ...base,
        dim,
        kind: 'graph',
        graphModel: graph,
        fromCache: false,
        embed: run,
        dispose: () => graph.dispose(),
      };
    } catch (error) {
      graph.dispose();
      throw error instanceof ModelError
        ? error
        : new ModelError(`custom backbone '${name}': ${(error as Error).message}`, { cause: error });
    }
  }
  const full = await layersModelFromArtifacts(artifacts);
  try {
    if (full.inputs.length !== 1)
      throw new ModelError(
        `custom backbone '${name}': expected one image input, found ${full.inputs.length}`,
      );
    checkInputShape(spec, full.inputs[0].shape);
    let model = full;
    if (spec.embeddingLayer) {
      let layer: tf.layers.Layer;
      try {
        layer = full.getLayer(spec.embeddingLayer);
      } catch {
        throw new ModelError(
          `custom backbone '${name}': no layer named '${spec.embeddingLayer}' (last layers: ${full.layers
            .slice(-5)
            .map((l) => l.name)
            .join(', ')})`,
        );
      }
      model = tf.model({
        inputs: full.inputs,
        outputs: layer.output as tf.SymbolicTensor,
        name: `framewise_${name}`,
      });
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
  backbone: BackboneSpec = DEFAULT_BACKBONE,
  options: LoadBackboneOptions = {},
): Promise<LoadedBackbone> {
  const spec = parseBackboneSpec('backbone', backbone);
  if (isOnnxBackbone(spec))
    throw new ModelError(
      `backbone ${spec.path ?? spec.url} is an ONNX model: it runs on the onnx engine, not on tfjs`,
    );
  const signal = checkSignal('signal', options.signal);
  if (options.cacheDir !== undefined) nonEmptyString('cacheDir', options.cacheDir);
  await selectBackend(options.backend ?? 'auto', { signal });
  signal?.throwIfAborted(); // loading tfjs held the event loop: a Ctrl-C that came meanwhile stops here
  if (typeof spec === 'string') return loadNamed(spec, options.cacheDir ?? defaultCacheDir(), signal);
  return loadCustom(spec, signal);
}

/** The part of a loaded backbone that is recorded in files. */
export function backboneInfo(backbone: BackboneInfo): BackboneInfo {
  const { id, name, inputSize, dim, normalize, spec } = backbone;
  return { id, name, inputSize, dim, normalize, spec };
}
