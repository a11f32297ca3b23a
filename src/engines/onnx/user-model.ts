/**
 * A user's `.onnx` backbone (`--backbone model.onnx`, a path or URL): a model exported by
 * `torch.onnx.export`, one from the ONNX model zoo, or one framewise converted.
 *
 * The model is used as it is. What framewise needs is read from it:
 * - the layout from the input shape: NCHW `[N, 3, S, S]` (torchvision, the zoo) or NHWC
 *   `[N, S, S, 3]`; the size S from the same shape, or `inputSize` where it is dynamic;
 * - the input type: float32 frames are normalised here (`normalize`, default `imagenet`);
 *   uint8 frames (a model with its normalisation inside) go in as they are;
 * - the output: the one named `output`, or the first. A 4-D output is pooled globally
 *   (mean over the spatial axes); D comes from the output.
 * The id is the name plus a hash of the file and of the settings that change its
 * embeddings (size, normalisation, output), so the embedding cache never mixes them.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelError } from '../../errors.js';
import { stableStringify } from '../../embedding/cache.js';
import {
  normalizationParams,
  type BackboneInfo,
  type Normalization,
  type OnnxBackbone,
} from '../../embedding/backbone-spec.js';
import type { Ort } from './runtime.js';

type Session = import('onnxruntime-node').InferenceSession;
type Tensor = import('onnxruntime-node').Tensor;

/** How frames go into a session and embeddings come out of it. */
export interface SessionPlan {
  inputName: string;
  outputName: string;
  /** uint8 RGB frames [n, S, S, 3] -> the input tensor. */
  input(frames: Uint8Array, n: number): Tensor;
  /** The output for n frames -> [n, D] float32. */
  read(output: Tensor, n: number): Float32Array;
  /** For the reason: layout, type and pooling. */
  describe: string;
}

async function readModel(spec: OnnxBackbone, signal?: AbortSignal): Promise<Uint8Array> {
  if (spec.path !== undefined) {
    try {
      return new Uint8Array(await readFile(spec.path, { signal }));
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new ModelError(`cannot read the ONNX backbone ${spec.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const url = spec.url!;
  if (url.startsWith('file:')) return new Uint8Array(await readFile(new URL(url), { signal }));
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ModelError(`cannot fetch the ONNX backbone ${url}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!response.ok) throw new ModelError(`cannot fetch the ONNX backbone ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function modelName(spec: OnnxBackbone): string {
  if (spec.name) return spec.name;
  const where = spec.path ?? new URL(spec.url!).pathname;
  return path.basename(where).replace(/\.onnx$/i, '') || 'onnx';
}

const dimOf = (d: number | string | undefined): number | undefined =>
  typeof d === 'number' && d > 0 ? d : undefined;

/** What a session's one input takes. */
interface InputLayout {
  layout: 'nchw' | 'nhwc';
  size: number;
  type: 'float32' | 'uint8';
  inputName: string;
}

/** Reads layout, size and type from the session's input; throws a ModelError saying what it found. */
function inputLayout(session: Session, spec: OnnxBackbone, name: string): InputLayout {
  if (session.inputNames.length !== 1) {
    throw new ModelError(
      `ONNX backbone '${name}': expected one input (frames), found ${session.inputNames.length} (${session.inputNames.join(', ')})`,
    );
  }
  const meta = session.inputMetadata[0];
  if (!meta?.isTensor) throw new ModelError(`ONNX backbone '${name}': its input is not a tensor`);
  const shape = meta.shape;
  const shown = `[${shape.map((d) => (typeof d === 'number' && d >= 0 ? d : '?')).join(', ')}]`;
  if (meta.type !== 'float32' && meta.type !== 'uint8')
    throw new ModelError(
      `ONNX backbone '${name}': its input is ${meta.type}; float32 or uint8 frames are supported`,
    );
  if (shape.length !== 4)
    throw new ModelError(
      `ONNX backbone '${name}': its input ${shown} is not 4-D ([N, 3, S, S] or [N, S, S, 3])`,
    );
  // 3 channels at axis 1 is NCHW (torchvision, the zoo); at axis 3, NHWC.
  const layout = dimOf(shape[1]) === 3 ? 'nchw' : dimOf(shape[3]) === 3 ? 'nhwc' : undefined;
  if (!layout)
    throw new ModelError(
      `ONNX backbone '${name}': its input ${shown} has no axis of 3 channels at 1 (NCHW) or 3 (NHWC)`,
    );
  const [h, w] = layout === 'nchw' ? [dimOf(shape[2]), dimOf(shape[3])] : [dimOf(shape[1]), dimOf(shape[2])];
  if (h !== undefined && w !== undefined && h !== w)
    throw new ModelError(`ONNX backbone '${name}': its input ${shown} is not square`);
  const fixed = h ?? w;
  if (fixed !== undefined && spec.inputSize !== undefined && spec.inputSize !== fixed) {
    throw new ModelError(
      `ONNX backbone '${name}': its input ${shown} takes ${fixed}x${fixed} frames, not the ${spec.inputSize} asked for`,
    );
  }
  const size = fixed ?? spec.inputSize;
  if (size === undefined)
    throw new ModelError(
      `ONNX backbone '${name}': its input ${shown} has a dynamic size; give the frame size (\`inputSize\`, \`--size\`)`,
    );
  return { layout, size, type: meta.type, inputName: session.inputNames[0] };
}

/** uint8 NHWC [n, S, S, 3] -> float32 in `layout`, normalised per channel. */
function normalised(
  frames: Uint8Array,
  n: number,
  S: number,
  layout: 'nchw' | 'nhwc',
  normalize: Normalization,
): Float32Array {
  const { scale, offset } = normalizationParams(normalize);
  const out = new Float32Array(frames.length);
  const plane = S * S;
  if (layout === 'nhwc') {
    for (let i = 0; i < frames.length; i += 3) {
      out[i] = frames[i] * scale[0] + offset[0];
      out[i + 1] = frames[i + 1] * scale[1] + offset[1];
      out[i + 2] = frames[i + 2] * scale[2] + offset[2];
    }
    return out;
  }
  // [n, S, S, 3] -> [n, 3, S, S]
  for (let f = 0; f < n; f++) {
    const base = f * plane * 3;
    for (let c = 0; c < 3; c++) {
      const s = scale[c];
      const o = offset[c];
      const dst = base + c * plane;
      for (let p = 0; p < plane; p++) out[dst + p] = frames[base + p * 3 + c] * s + o;
    }
  }
  return out;
}

/** An output of n frames -> [n, D]: as it is when 2-D, the spatial mean when 4-D. */
function pooled(y: Tensor, n: number, layout: 'nchw' | 'nhwc', name: string): Float32Array {
  const dims = y.dims;
  if (y.type !== 'float32')
    throw new ModelError(`ONNX backbone '${name}': its output is ${y.type}, expected float32`);
  const data = y.data as Float32Array;
  if (dims[0] !== n)
    throw new ModelError(
      `ONNX backbone '${name}': its output [${dims.join(', ')}] does not have the ${n} frames first`,
    );
  if (dims.length === 2) return data;
  if (dims.length !== 4)
    throw new ModelError(
      `ONNX backbone '${name}': its output [${dims.join(', ')}] is neither [N, D] nor 4-D (pooled globally)`,
    );
  // The output follows the input's layout: [N, C, H, W] or [N, H, W, C].
  const [C, area] = layout === 'nchw' ? [dims[1], dims[2] * dims[3]] : [dims[3], dims[1] * dims[2]];
  const out = new Float32Array(n * C);
  for (let f = 0; f < n; f++) {
    const base = f * C * area;
    for (let c = 0; c < C; c++) {
      let sum = 0;
      if (layout === 'nchw') for (let p = 0; p < area; p++) sum += data[base + c * area + p];
      else for (let p = 0; p < area; p++) sum += data[base + p * C + c];
      out[f * C + c] = sum / area;
    }
  }
  return out;
}

/**
 * Opens a user's ONNX model in a session and works out how frames go in and embeddings come
 * out (one probe frame gives D). Rejects with a ModelError that says what did not fit.
 */
export async function openUserModel(
  ort: Ort,
  spec: OnnxBackbone,
  options: import('onnxruntime-node').InferenceSession.SessionOptions,
  signal?: AbortSignal,
): Promise<{ session: Session; plan: SessionPlan; info: BackboneInfo }> {
  const name = modelName(spec);
  const bytes = await readModel(spec, signal);
  signal?.throwIfAborted();
  let session: Session;
  try {
    session = await ort.InferenceSession.create(bytes, options);
  } catch (error) {
    throw new ModelError(
      `ONNX backbone '${name}' does not load in ONNX Runtime: ${(error as Error).message.split('\n')[0]}`,
      { cause: error },
    );
  }
  try {
    const input = inputLayout(session, spec, name);
    const outputName = spec.output ?? session.outputNames[0];
    if (!session.outputNames.includes(outputName)) {
      throw new ModelError(
        `ONNX backbone '${name}': no output named '${outputName}' (outputs: ${session.outputNames.join(', ')})`,
      );
    }
    const normalize: Normalization = spec.normalize ?? 'imagenet';
    const plan = sessionPlan(ort, input, outputName, normalize, name);
    const dim = await probeDim(session, plan, input.size);
    const settings = {
      size: input.size,
      normalize: input.type === 'uint8' ? null : normalize,
      output: outputName,
    };
    const hash = createHash('sha256')
      .update(bytes)
      .update(stableStringify(settings))
      .digest('hex')
      .slice(0, 12);
    const info: BackboneInfo = {
      id: `${name}-${hash}`,
      name,
      inputSize: input.size,
      dim,
      normalize,
      // What a saved model records: the spec with what was read from the model filled in.
      spec: { ...spec, inputSize: input.size, normalize, output: outputName },
    };
    return { session, plan, info };
  } catch (error) {
    await session.release();
    throw error;
  }
}

/** How frames go into a session whose input is `input`, and how its output `outputName` comes out. */
function sessionPlan(
  ort: Ort,
  { layout, size, type, inputName }: InputLayout,
  outputName: string,
  normalize: Normalization,
  name: string,
): SessionPlan {
  const dims = layout === 'nchw' ? (n: number) => [n, 3, size, size] : (n: number) => [n, size, size, 3];
  const input =
    type === 'uint8'
      ? layout === 'nhwc'
        ? (frames: Uint8Array, n: number) => new ort.Tensor('uint8', frames, dims(n))
        : (frames: Uint8Array, n: number) => {
            // The same transpose to [n, 3, S, S], values kept as they are.
            const t = normalised(frames, n, size, 'nchw', { mean: 0, std: 1 / 255 });
            return new ort.Tensor('uint8', Uint8Array.from(t), dims(n));
          }
      : (frames: Uint8Array, n: number) =>
          new ort.Tensor('float32', normalised(frames, n, size, layout, normalize), dims(n));
  return {
    inputName,
    outputName,
    input,
    read: (y, n) => pooled(y, n, layout, name),
    describe: `${layout.toUpperCase()} ${type} input${type === 'uint8' ? '' : ` normalised ${typeof normalize === 'string' ? normalize : JSON.stringify(normalize)}`}, output '${outputName}'`,
  };
}

/** Runs one black frame through the session: D, and a clear error now rather than at the first video. Adds the pooling to `plan.describe`. */
async function probeDim(session: Session, plan: SessionPlan, size: number): Promise<number> {
  const probe = await session.run({ [plan.inputName]: plan.input(new Uint8Array(size * size * 3), 1) }, [
    plan.outputName,
  ]);
  const y = probe[plan.outputName];
  try {
    const dim = plan.read(y, 1).length;
    if (y.dims.length === 4) plan.describe += `, [N, ${y.dims.slice(1).join(', ')}] pooled globally`;
    return dim;
  } finally {
    y.dispose();
  }
}
