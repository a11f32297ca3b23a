/**
 * The ONNX model of a backbone: converted from its Keras topology and weights once, then
 * cached on disk by backbone id.
 *
 * A registry backbone's cached model is found from its name and the nsfwjs version alone
 * (`onnx/<name>-nsfwjs<v>-c<converter>.json` holds the id, the shape facts and the model's
 * sha256), so a cached run loads neither tfjs nor the Keras weights. The model file is
 * `onnx/<id>-c<converter>.onnx`. Both are written atomically, the model first. A custom tfjs
 * backbone is converted on every load (it is read through tfjs anyway to compute its id).
 *
 * After a conversion the ONNX graph and the tfjs model run one deterministic frame each, and
 * a difference above `VERIFY_TOLERANCE` is a `ModelError`: `auto` then falls back to tfjs
 * rather than give different embeddings under the same backbone id.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelError } from '../../errors.js';
import { defaultCacheDir, writeFileAtomic } from '../../fs.js';
import { debug } from '../../log.js';
import {
  BACKBONES,
  nsfwjsVersion,
  type BackboneInfo,
  type BackboneSpec,
} from '../../embedding/backbone-spec.js';
import { CONVERTER_VERSION, convertKerasToOnnx } from '../../tfjs/keras-to-onnx.js';
import type { Ort } from './runtime.js';

/** Largest difference from tfjs accepted on the check frame after a conversion. */
export const VERIFY_TOLERANCE = 1e-4;

export interface OnnxModel {
  info: BackboneInfo;
  bytes: Uint8Array;
  /** `cached` (read from disk), or `converted` (now). */
  source: 'cached' | 'converted';
  /** Where it is cached, when it is. */
  file?: string;
  /** Largest |onnx - tfjs| on the check frame, when this conversion was verified. */
  maxAbsDiff?: number;
}

interface IndexEntry {
  id: string;
  dim: number;
  inputSize: number;
  sha256: string;
  file: string;
  maxAbsDiff?: number;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The cache files of a registry backbone. */
export function onnxCachePaths(
  cacheDir: string,
  name: string,
  id?: string,
): { index: string; model?: string } {
  const root = path.join(cacheDir, 'onnx');
  return {
    index: path.join(root, `${name}-nsfwjs${nsfwjsVersion()}-c${CONVERTER_VERSION}.json`),
    model: id ? path.join(root, `${id}-c${CONVERTER_VERSION}.onnx`) : undefined,
  };
}

async function readCached(cacheDir: string, name: string): Promise<OnnxModel | undefined> {
  const entry = BACKBONES[name];
  const { index } = onnxCachePaths(cacheDir, name);
  let known: IndexEntry;
  try {
    known = JSON.parse(await readFile(index, 'utf8')) as IndexEntry;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      debug('onnx: unreadable %s: %s', index, (error as Error).message);
    return undefined;
  }
  const file = onnxCachePaths(cacheDir, name, known.id).model!;
  try {
    const bytes = new Uint8Array(await readFile(file));
    // A damaged or foreign file is a miss: convert again rather than run it.
    if (sha256(bytes) !== known.sha256) throw new Error('its sha256 does not match the index');
    if (known.inputSize !== entry.inputSize || !(known.dim > 0))
      throw new Error('the index does not match the registry entry');
    const info: BackboneInfo = {
      id: known.id,
      name,
      inputSize: entry.inputSize,
      dim: known.dim,
      normalize: entry.normalize,
      spec: name,
    };
    return { info, bytes, source: 'cached', file, maxAbsDiff: known.maxAbsDiff };
  } catch (error) {
    debug('onnx: cache miss for %s (%s): %s', name, file, (error as Error).message);
    return undefined;
  }
}

/**
 * Runs one deterministic frame through both the tfjs backbone and the ONNX session and
 * returns the largest absolute difference.
 */
async function verify(
  ort: Ort,
  bytes: Uint8Array,
  backbone: import('../../tfjs/registry.js').LoadedBackbone,
): Promise<number> {
  const { tf } = await import('../../tfjs/tf.js');
  const { normalizeFrames } = await import('../../tfjs/registry.js');
  const S = backbone.inputSize;
  const frame = new Uint8Array(S * S * 3);
  // Smooth gradients plus texture: every channel and every value range is exercised.
  for (let i = 0; i < frame.length; i++)
    frame[i] = Math.round(127.5 + 90 * Math.sin(i * 0.0137 + (i % 3)) + 37 * Math.sin(i * 0.731)) & 255;
  const expected = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(frame), [1, S, S, 3]); // [1, S, S, 3]
    return backbone.embed(normalizeFrames(x, backbone.normalize)) as import('@tensorflow/tfjs').Tensor2D; // [1, D]
  });
  let reference: Float32Array;
  try {
    reference = (await expected.data()) as Float32Array;
  } finally {
    expected.dispose();
  }
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  try {
    const result = await session.run({ frames: new ort.Tensor('uint8', frame, [1, S, S, 3]) });
    const got = result[session.outputNames[0]].data as Float32Array;
    if (got.length !== reference.length)
      throw new ModelError(
        `ONNX conversion: the graph gives ${got.length} values per frame, tfjs ${reference.length}`,
      );
    let max = 0;
    for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - reference[i]));
    return max;
  } finally {
    await session.release();
  }
}

/**
 * Converts a tfjs-loaded backbone (registry or custom LayersModel), BatchNorm folded as the
 * tfjs engine runs it, and checks it against tfjs.
 */
async function convertLoaded(
  ort: Ort,
  backbone: import('../../tfjs/registry.js').LoadedBackbone,
  options: { cacheDir: string; signal?: AbortSignal },
): Promise<{ bytes: Uint8Array; maxAbsDiff: number }> {
  if (!backbone.layersModel) {
    throw new ModelError(
      `ONNX conversion: backbone '${backbone.name}' is a tfjs GraphModel; only LayersModels are converted (give an .onnx file instead)`,
    );
  }
  const { foldedArtifacts } = await import('../../tfjs/fold.js');
  const t0 = Date.now();
  options.signal?.throwIfAborted();
  const { artifacts } = await foldedArtifacts(backbone, options);
  const bytes = await convertKerasToOnnx(artifacts, {
    inputSize: backbone.inputSize,
    normalize: backbone.normalize,
    name: backbone.name,
    signal: options.signal,
  });
  const maxAbsDiff = await verify(ort, bytes, backbone);
  options.signal?.throwIfAborted();
  debug(
    'onnx: converted %s in %d ms, %d bytes, max |onnx - tfjs| %s',
    backbone.id,
    Date.now() - t0,
    bytes.length,
    maxAbsDiff,
  );
  if (!(maxAbsDiff <= VERIFY_TOLERANCE)) {
    throw new ModelError(
      `ONNX conversion of '${backbone.name}': the graph differs from tfjs by ${maxAbsDiff} on the check frame (tolerance ${VERIFY_TOLERANCE})`,
    );
  }
  return { bytes, maxAbsDiff };
}

export interface OnnxModelOptions {
  /** @default $FRAMEWISE_CACHE or ~/.cache/framewise */
  cacheDir?: string;
  /** Told when the model is not cached and the (seconds-long) conversion starts. */
  onPrepare?: (message: string) => void;
  signal?: AbortSignal;
}

/**
 * The ONNX model of a backbone spec: from the cache, or converted (through tfjs, which
 * reads the Keras weights) and cached.
 */
export async function onnxModelFor(
  ort: Ort,
  spec: BackboneSpec,
  options: OnnxModelOptions = {},
): Promise<OnnxModel> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const signal = options.signal;
  if (typeof spec === 'string') {
    const cached = await readCached(cacheDir, spec);
    if (cached) return cached;
  }
  signal?.throwIfAborted();
  options.onPrepare?.(
    typeof spec === 'string'
      ? `preparing ${spec} for ONNX Runtime, once`
      : 'preparing the backbone for ONNX Runtime',
  );
  const { loadBackbone, backboneInfo } = await import('../../tfjs/registry.js');
  const backbone = await loadBackbone(spec, { cacheDir, signal });
  try {
    const info = backboneInfo(backbone);
    const { bytes, maxAbsDiff } = await convertLoaded(ort, backbone, { cacheDir, signal });
    if (typeof spec !== 'string') return { info, bytes, source: 'converted', maxAbsDiff };
    const { index, model } = onnxCachePaths(cacheDir, spec, info.id);
    try {
      await mkdir(path.dirname(index), { recursive: true });
      // The model first: an index never points at a file that is not all there.
      await writeFileAtomic(model!, bytes);
      const entry: IndexEntry = {
        id: info.id,
        dim: info.dim,
        inputSize: info.inputSize,
        sha256: sha256(bytes),
        file: path.basename(model!),
        maxAbsDiff,
      };
      await writeFileAtomic(index, JSON.stringify(entry));
    } catch (error) {
      // A read-only or full cache costs start-up time, not correctness.
      debug('onnx: could not cache %s: %s', model, (error as Error).message);
      return { info, bytes, source: 'converted', maxAbsDiff };
    }
    return { info, bytes, source: 'converted', file: model, maxAbsDiff };
  } finally {
    backbone.dispose();
  }
}
