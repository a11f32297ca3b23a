/**
 * The whole clip model as one ONNX graph, for use outside framewise.
 *
 *   frames uint8 [N, T, S, S, 3] (RGB 0..255; normalisation inside)
 *     -> Reshape [N*T, S, S, 3] -> backbone (BN folded by fold.ts, converted) -> Reshape [N, T, D]
 *     -> head: LSTM / GRU / bidirectional LSTM (ONNX LSTM, GRU) or the masked mean
 *     -> Dense -> Softmax -> probs [N, classes] (clip mode) or [N, T, classes] (frame mode)
 *     (an ensemble: every member's head on the same embeddings, then Mean of their probabilities)
 *
 * The time mask [N, T] says which frames are real. By default it is a second input, `mask`
 * bool [N, T] (true: a real frame); a caller with no padding feeds all-true. ONNX has no
 * graph input a caller may leave out: an input with a default initializer is one in the
 * format, but onnxruntime-node drops a feed for it without a word (tried with 1.30), and ORT
 * warns about it on every load. So `mask: false` (`--no-mask`) exports the other variant,
 * frames only, where the mask is derived as framewise's own models derive it (TimeMask): a
 * frame is real when any of its values is above 0, i.e. all-zero frames are padding.
 *
 * Either way the recurrent heads take the mask as ONNX's `sequence_lens` (its sum over T),
 * so padding must be at the end, as framewise pads; the masked mean head takes the mask as
 * it is. In frame mode the probabilities of padded frames are not meaningful (ONNX gives the
 * head zeros there, Keras repeats the last state).
 *
 * Gate orders: Keras LSTM kernels are [i, f, c, o], ONNX's [i, o, f, c]; Keras GRU and ONNX
 * GRU are both [z, r, h], and Keras `reset_after` is ONNX `linear_before_reset`.
 */
import onnxProto from 'onnx-proto';
import { ModelError } from '../errors.js';
import {
  boolean,
  checkSignal,
  invalid,
  isPlainObject,
  LIMITS,
  nonEmptyString,
  positiveInteger,
} from '../validate.js';
import type { Normalization } from '../embedding/backbone-spec.js';
import {
  appendKerasBackbone,
  GraphBuilder,
  int,
  ints,
  layersOf,
  OPSET,
  weightsOf,
  type KerasSource,
  type KerasWeight,
  type LayerJson,
} from '../tfjs/keras-to-onnx.js';
import type { HeadMode } from './model-info.js';

const { onnx } = onnxProto;
const BOOL = onnx.TensorProto.DataType.BOOL;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT32 = onnx.TensorProto.DataType.INT32;
const UINT8 = onnx.TensorProto.DataType.UINT8;
const STRINGS = onnx.AttributeProto.AttributeType.STRINGS;

export interface WholeModelSource {
  backbone: KerasSource;
  inputSize: number;
  normalize: Normalization;
  /** The head's Keras topology and weights (model.json + weights.bin of a model folder). */
  head: KerasSource;
  /** An ensemble's other members: the graph's `probs` is then the mean of every head's probabilities (ONNX `Mean`). */
  members?: KerasSource[];
  mode: HeadMode;
  /** Fix T in the input shape. @default dynamic */
  frames?: number;
  /** A `mask` input bool [N, T]; `false` derives the mask from all-zero frames instead. @default true */
  mask?: boolean;
  name?: string;
}

/** Keras activation name -> ONNX RNN activation. */
function rnnActivation(layer: LayerJson, name: string): string {
  const map: Record<string, string> = {
    sigmoid: 'Sigmoid',
    hard_sigmoid: 'HardSigmoid',
    tanh: 'Tanh',
    relu: 'Relu',
  };
  const got = map[name];
  if (!got)
    throw new ModelError(
      `ONNX export: layer '${layer.name}' uses activation '${name}', which ONNX's recurrent ops do not take`,
    );
  return got;
}

/** Rows of a Keras [in, G*U] kernel, gate blocks reordered, transposed to ONNX [G*U, in]. */
function gatesTransposed(w: KerasWeight, order: number[], units: number): Float32Array {
  const [rows, cols] = w.shape;
  const out = new Float32Array(rows * cols);
  order.forEach((kerasGate, onnxGate) => {
    for (let u = 0; u < units; u++)
      for (let r = 0; r < rows; r++)
        out[(onnxGate * units + u) * rows + r] = w.values[r * cols + kerasGate * units + u];
  });
  return out;
}

function gatesVector(values: Float32Array, order: number[], units: number): Float32Array {
  const out = new Float32Array(order.length * units);
  order.forEach((kerasGate, onnxGate) =>
    out.set(values.subarray(kerasGate * units, (kerasGate + 1) * units), onnxGate * units),
  );
  return out;
}

/** The weights of one recurrent layer, found by the layer's own name under any wrapper prefix. */
function recurrentWeights(
  weights: Map<string, Map<string, KerasWeight>>,
  prefix: string,
  layer: LayerJson,
): Map<string, KerasWeight> {
  for (const [key, value] of weights)
    if (key === prefix || key.endsWith(`/${prefix}`) || key === `${prefix}/cell`) return value;
  // tfjs names the cell weights `<layer>/kernel` for a plain layer.
  throw new ModelError(
    `ONNX export: no weights for recurrent layer '${layer.name}' (looked for '${prefix}')`,
  );
}

/** W, R, B of one direction, in ONNX gate order. */
function directionWeights(
  cls: 'LSTM' | 'GRU',
  layer: LayerJson,
  w: Map<string, KerasWeight>,
  units: number,
): { W: Float32Array; R: Float32Array; B: Float32Array; linearBeforeReset: number } {
  const kernel = w.get('kernel');
  const recurrent = w.get('recurrent_kernel');
  if (!kernel || !recurrent)
    throw new ModelError(`ONNX export: layer '${layer.name}' lacks kernel or recurrent_kernel`);
  const order = cls === 'LSTM' ? [0, 3, 1, 2] : [0, 1, 2]; // ONNX gate g takes Keras gate order[g]
  const G = order.length;
  const B = new Float32Array(2 * G * units); // [Wb, Rb]
  let linearBeforeReset = 0;
  const bias = w.get('bias');
  if (layer.config.use_bias !== false) {
    if (!bias) throw new ModelError(`ONNX export: layer '${layer.name}' has use_bias but no bias`);
    if (cls === 'GRU' && layer.config.reset_after) {
      // Keras reset_after: bias [2, 3U], input bias then recurrent bias.
      linearBeforeReset = 1;
      B.set(gatesVector(bias.values.subarray(0, G * units), order, units), 0);
      B.set(gatesVector(bias.values.subarray(G * units), order, units), G * units);
    } else {
      B.set(gatesVector(bias.values, order, units), 0);
    }
  }
  return {
    W: gatesTransposed(kernel, order, units),
    R: gatesTransposed(recurrent, order, units),
    B,
    linearBeforeReset,
  };
}

/** The head's running output: its ONNX name, its rank ([N, W] or [N, T, W]) and width W. */
interface Flow {
  name: string;
  rank: 2 | 3;
  width: number;
}

/** What a head layer's ONNX mapping works with. */
interface HeadStep {
  g: GraphBuilder;
  layer: LayerJson;
  weights: Map<string, Map<string, KerasWeight>>;
  /** The time mask, float [N, T] 0/1. */
  mask: string;
  h: Flow;
}

/** Recurrent layers (LSTM, GRU, Bidirectional of either) as ONNX LSTM / GRU with `sequence_lens`. */
function recurrentLayer({ g, layer, weights, mask, h }: HeadStep): Flow {
  const { inner, cell } = recurrentCell(layer);
  const units = inner.config.units as number;
  const dirs = layer.class_name === 'Bidirectional' ? ['forward', 'backward'] : [undefined];
  const parts = dirs.map((d) =>
    directionWeights(
      cell,
      inner,
      recurrentWeights(weights, d ? `${layer.name}/${d}_${inner.name}` : layer.name, inner),
      units,
    ),
  );
  const cat = (k: 'W' | 'R' | 'B') => concatDirections(parts.map((p) => p[k]));
  const G = cell === 'LSTM' ? 4 : 3;
  const nd = parts.length;
  const activations = cellActivations(inner, cell, nd);
  const seqLens = g.node(
    'Cast',
    [g.node('ReduceSum', [mask, g.constantInt64('time_axis', [1])], 'real_frames', [int('keepdims', 0)])],
    'sequence_lens',
    [int('to', INT32)],
  ); // [N]
  const xt = g.node('Transpose', [h.name], `${layer.name}_time_major`, [ints('perm', [1, 0, 2])]); // [T, N, D]
  const attrs = [
    int('hidden_size', units),
    {
      name: 'direction',
      type: onnx.AttributeProto.AttributeType.STRING,
      s: new TextEncoder().encode(nd === 2 ? 'bidirectional' : 'forward'),
    },
    { name: 'activations', type: STRINGS, strings: activations.map((a) => new TextEncoder().encode(a)) },
  ];
  if (cell === 'GRU') attrs.push(int('linear_before_reset', parts[0].linearBeforeReset));
  const op = g.unique(`${layer.name}_${cell.toLowerCase()}`);
  const [Y, Yh] = [`${op}_Y`, `${op}_Y_h`];
  g.nodes.push({
    opType: cell,
    name: op,
    input: [
      xt,
      g.constant(`${op}/W`, [nd, G * units, h.width], cat('W')),
      g.constant(`${op}/R`, [nd, G * units, units], cat('R')),
      g.constant(`${op}/B`, [nd, 2 * G * units], cat('B')),
      seqLens,
    ],
    output: [Y, Yh],
    attribute: attrs,
  });
  return recurrentOutput(g, op, { Y, Yh }, Boolean(inner.config.return_sequences), nd * units);
}

/** The recurrent cell a layer (LSTM, GRU, or Bidirectional of either, concat-merged) runs, or a ModelError. */
function recurrentCell(layer: LayerJson): { inner: LayerJson; cell: 'LSTM' | 'GRU' } {
  const cls = layer.class_name;
  const inner: LayerJson =
    cls === 'Bidirectional' ? { ...layer.config.layer, name: layer.config.layer.config.name } : layer;
  const cell = inner.class_name as 'LSTM' | 'GRU';
  if (cell !== 'LSTM' && cell !== 'GRU')
    throw new ModelError(`ONNX export: layer '${layer.name}' wraps a ${cell}; LSTM and GRU are exported`);
  if (cls === 'Bidirectional' && (layer.config.merge_mode ?? 'concat') !== 'concat') {
    throw new ModelError(
      `ONNX export: layer '${layer.name}' merges by '${layer.config.merge_mode}'; concat is exported`,
    );
  }
  return { inner, cell };
}

/** The directions' weights one after the other, as an ONNX LSTM / GRU takes them ([dirs, ...]). */
function concatDirections(arrays: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/** The ONNX `activations` of a cell, per direction: LSTM f, g, h; GRU f, g (Keras defaults hard_sigmoid and tanh). */
function cellActivations(inner: LayerJson, cell: 'LSTM' | 'GRU', directions: number): string[] {
  const recurrent = inner.config.recurrent_activation ?? 'hard_sigmoid';
  const activation = inner.config.activation ?? 'tanh';
  const acts = cell === 'LSTM' ? [recurrent, activation, activation] : [recurrent, activation];
  return Array.from({ length: directions }, () => acts.map((a: string) => rnnActivation(inner, a))).flat();
}

/**
 * The recurrent op's output batch-major, directions concatenated (Keras concat: forward, then
 * backward): every step (`Y`) where the layer returns sequences, else the last (`Yh`).
 */
function recurrentOutput(
  g: GraphBuilder,
  op: string,
  { Y, Yh }: { Y: string; Yh: string },
  sequences: boolean,
  width: number,
): Flow {
  if (sequences) {
    // Y [T, dirs, N, U] -> [N, T, dirs, U] -> [N, T, dirs*U]
    const t = g.node('Transpose', [Y], `${op}_batch_major`, [ints('perm', [2, 0, 1, 3])]);
    return {
      name: g.node('Reshape', [t, g.constantInt64(`${op}/seq_shape`, [0, 0, width])], `${op}_seq`),
      rank: 3,
      width,
    };
  }
  // Y_h [dirs, N, U] -> [N, dirs, U] -> [N, dirs*U]
  const t = g.node('Transpose', [Yh], `${op}_last_batch_major`, [ints('perm', [1, 0, 2])]);
  return {
    name: g.node('Reshape', [t, g.constantInt64(`${op}/last_shape`, [0, width])], `${op}_last`),
    rank: 2,
    width,
  };
}

/** The masked mean over time: sum_t x * mask / max(sum_t mask, 1), [N, D]. */
function maskedMeanLayer({ g, mask, h }: HeadStep): Flow {
  const m3 = g.node('Unsqueeze', [mask, g.constantInt64('mask_axis', [2])], 'mask_3d'); // [N, T, 1]
  const sum = g.node(
    'ReduceSum',
    [g.node('Mul', [h.name, m3], 'masked'), g.constantInt64('mean_axis', [1])],
    'masked_sum',
    [int('keepdims', 0)],
  );
  const count = g.node(
    'Max',
    [
      g.node('ReduceSum', [mask, g.constantInt64('count_axis', [1])], 'mask_count', [int('keepdims', 1)]),
      g.constant('one', [], Float32Array.of(1)),
    ],
    'mask_count_1',
  );
  return { name: g.node('Div', [sum, count], 'mean'), rank: 2, width: h.width };
}

/** Dense (softmax or linear), alone or in TimeDistributed: MatMul + Add (+ Softmax). */
function denseLayer({ g, layer, weights, h }: HeadStep): Flow {
  const dense: LayerJson =
    layer.class_name === 'Dense' ? layer : { ...layer.config.layer, name: layer.config.layer.config.name };
  if (dense.class_name !== 'Dense')
    throw new ModelError(`ONNX export: layer '${layer.name}' wraps a ${dense.class_name}; Dense is exported`);
  const w = [...weights].find(
    ([k]) => k === dense.name || k.endsWith(`/${dense.name}`) || k === layer.name,
  )?.[1];
  const kernel = w?.get('kernel');
  if (!kernel) throw new ModelError(`ONNX export: no kernel for Dense layer '${dense.name}'`);
  const units = kernel.shape[1];
  const bias = w?.get('bias')?.values ?? new Float32Array(units);
  const y = g.node(
    'Add',
    [
      g.node(
        'MatMul',
        [h.name, g.constant(`${dense.name}/W`, kernel.shape, kernel.values)],
        `${dense.name}_matmul`,
      ),
      g.constant(`${dense.name}/B`, [units], bias),
    ],
    `${dense.name}_logits`,
  );
  const act = dense.config.activation ?? 'linear';
  if (act !== 'softmax' && act !== 'linear')
    throw new ModelError(`ONNX export: Dense layer '${dense.name}' uses activation '${act}'`);
  return {
    name: act === 'softmax' ? g.node('Softmax', [y], `${dense.name}_softmax`, [int('axis', -1)]) : y,
    rank: h.rank,
    width: units,
  };
}

/** Each Keras head layer class and its ONNX mapping; `null`: the layer does nothing at inference. */
const HEAD_LAYERS: Readonly<Record<string, ((step: HeadStep) => Flow) | null>> = {
  InputLayer: null,
  Masking: null, // the mask is an input (or derived from the frames)
  Dropout: null,
  LSTM: recurrentLayer,
  GRU: recurrentLayer,
  Bidirectional: recurrentLayer,
  FramewiseMaskedMean: maskedMeanLayer,
  Dense: denseLayer,
  FramewiseTimeDistributed: denseLayer,
};

/**
 * The frames' part of the graph: uint8 frames [N, T, S, S, 3] through the backbone to
 * embeddings [N, T, D], and the time mask as float [N, T].
 */
async function appendFrames(
  g: GraphBuilder,
  source: WholeModelSource,
  withMask: boolean,
  signal?: AbortSignal,
): Promise<{ x: string; D: number; mask: string }> {
  const S = source.inputSize;
  g.unique('frames');
  // [N, T, S, S, 3] -> [N*T, S, S, 3]
  const flat = g.node(
    'Reshape',
    ['frames', g.constantInt64('frames_flat_shape', [-1, S, S, 3])],
    'frames_flat',
  );
  const emb = await appendKerasBackbone(g, source.backbone, {
    inputSize: S,
    normalize: source.normalize,
    name: source.name,
    input: flat,
    signal,
  });
  const D = emb.shape[0];
  // [N*T, D] -> [N, T, D], with N and T taken from the input.
  const nt = g.node(
    'Slice',
    [
      g.node('Shape', ['frames'], 'frames_shape'),
      g.constantInt64('nt_start', [0]),
      g.constantInt64('nt_end', [2]),
    ],
    'frames_nt',
  );
  const x = g.node(
    'Reshape',
    [emb.name, g.node('Concat', [nt, g.constantInt64('dim_d', [D])], 'ntd_shape', [int('axis', 0)])],
    'embeddings',
  ); // [N, T, D]
  let real = 'mask'; // bool [N, T], the input
  if (withMask) g.unique('mask');
  else {
    // Derived: a frame is real when any of its values is above 0.
    const frameMax = g.node(
      'ReduceMax',
      [g.node('Cast', ['frames'], 'frames_f', [int('to', FLOAT)])],
      'frame_max',
      [ints('axes', [2, 3, 4]), int('keepdims', 0)],
    ); // [N, T]
    real = g.node('Greater', [frameMax, g.constant('zero', [], Float32Array.of(0))], 'frame_real'); // bool [N, T]
  }
  return { x, D, mask: g.node('Cast', [real], 'mask_f', [int('to', FLOAT)]) }; // mask [N, T] 0/1
}

/** Exports the whole clip model (backbone + head) as ONNX model bytes. */
export async function exportWholeModel(source: WholeModelSource, signal?: AbortSignal): Promise<Uint8Array> {
  const S = source.inputSize;
  const g = new GraphBuilder();
  const withMask = source.mask ?? true;
  const { x, D, mask } = await appendFrames(g, source, withMask, signal);
  const expectedRank = source.mode === 'clip' ? 2 : 3;
  // Every head on the same embeddings and mask; an ensemble's probabilities are averaged in the graph.
  const outs = [source.head, ...(source.members ?? [])].map((head) => {
    const { layers } = layersOf(head.modelTopology);
    const weights = weightsOf(head);
    let h: Flow = { name: x, rank: 3, width: D }; // [N, T, D]
    for (const layer of layers) {
      const map = Object.hasOwn(HEAD_LAYERS, layer.class_name) ? HEAD_LAYERS[layer.class_name] : undefined;
      if (map === undefined)
        throw new ModelError(
          `ONNX export: head layer '${layer.name}' (${layer.class_name}) has no ONNX mapping`,
        );
      if (map) h = map({ g, layer, weights, mask, h });
    }
    if (h.rank !== expectedRank)
      throw new ModelError(`ONNX export: the head gives a rank-${h.rank} output in ${source.mode} mode`);
    return h;
  });
  const h = outs[0];
  const probs = g.node(
    outs.length > 1 ? 'Mean' : 'Identity',
    outs.map((o) => o.name),
    'probs',
  );
  const T = source.frames === undefined ? { dimParam: 'T' } : { dimValue: source.frames };
  const model = onnx.ModelProto.fromObject({
    irVersion: 7,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'framewise',
    graph: {
      name: source.name ?? 'framewise_clip_model',
      node: g.nodes,
      initializer: g.initializers,
      input: [
        {
          name: 'frames',
          type: {
            tensorType: {
              elemType: UINT8,
              shape: { dim: [{ dimParam: 'N' }, T, { dimValue: S }, { dimValue: S }, { dimValue: 3 }] },
            },
          },
        },
        ...(withMask
          ? [
              {
                name: 'mask',
                type: { tensorType: { elemType: BOOL, shape: { dim: [{ dimParam: 'N' }, T] } } },
              },
            ]
          : []),
      ],
      output: [
        {
          name: probs,
          type: {
            tensorType: {
              elemType: FLOAT,
              shape: {
                dim:
                  source.mode === 'clip'
                    ? [{ dimParam: 'N' }, { dimValue: h.width }]
                    : [{ dimParam: 'N' }, T, { dimValue: h.width }],
              },
            },
          },
        },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface ExportOnnxOptions {
  /** Backbone cache folder. @default $FRAMEWISE_CACHE or ~/.cache/framewise */
  cacheDir?: string;
  /** Fix T in the input shape. @default dynamic */
  frames?: number;
  /** A `mask` input bool [N, T] (true: a real frame); `false` reads padding from all-zero frames. @default true */
  mask?: boolean;
  signal?: AbortSignal;
}

/**
 * Whether `file` is an ONNX model that framewise exported, by its content: a ModelProto
 * whose `producer_name` (field 2, written right after `ir_version`) is `framewise`.
 */
export async function isFramewiseOnnx(file: string): Promise<boolean> {
  const { open } = await import('node:fs/promises');
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return false;
  try {
    const { buffer } = await handle.read(Buffer.alloc(32), 0, 32, 0);
    let i = 0;
    if (buffer[i++] !== 0x08) return false; // field 1, varint: ir_version
    while (i < 16 && buffer[i] & 0x80) i++;
    i++;
    if (buffer[i++] !== 0x12) return false; // field 2, length-delimited: producer_name
    const length = buffer[i++];
    return buffer.subarray(i, i + length).toString('latin1') === 'framewise';
  } finally {
    await handle.close();
  }
}

/**
 * Exports a model folder (made by `train`) as one ONNX file: uint8 frames [N, T, S, S, 3] and
 * (unless `mask: false`) bool mask [N, T] in, `probs` out. The backbone must be a registry backbone or a tfjs LayersModel (its Keras
 * layers are converted); an `.onnx` backbone is not merged.
 */
export async function exportOnnx(
  modelDir: string,
  outFile: string,
  options: ExportOnnxOptions = {},
): Promise<{ file: string; bytes: number; mode: HeadMode; labels: string[]; size: number }> {
  nonEmptyString('modelDir', modelDir);
  nonEmptyString('outFile', outFile);
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  if (options.frames !== undefined) positiveInteger('options.frames', options.frames, LIMITS.frames);
  if (options.mask !== undefined) boolean('options.mask', options.mask);
  const signal = checkSignal('options.signal', options.signal);
  signal?.throwIfAborted();
  const { loadModel } = await import('./model-files.js');
  const { tfClassifier } = await import('./classifier.js');
  const { loadBackbone } = await import('../tfjs/registry.js');
  const { modelToArtifacts } = await import('../tfjs/artifacts.js');
  const { foldedArtifacts } = await import('../tfjs/fold.js');
  const { writeFileAtomic } = await import('../fs.js');
  const head = tfClassifier(await loadModel(modelDir, { signal }));
  try {
    const backbone = await loadBackbone(head.info.backbone, { cacheDir: options.cacheDir, signal });
    try {
      if (backbone.id !== head.info.backboneId)
        throw new ModelError(
          `the model in ${modelDir} was trained on ${head.info.backboneId}, but its backbone now loads as ${backbone.id}`,
        );
      if (!backbone.layersModel)
        throw new ModelError(
          `backbone '${backbone.id}' is a GraphModel; only LayersModel backbones are exported`,
        );
      const bytes = await exportWholeModel(
        {
          backbone: (await foldedArtifacts(backbone, { cacheDir: options.cacheDir, signal })).artifacts,
          inputSize: backbone.inputSize,
          normalize: backbone.normalize,
          head: await modelToArtifacts(head.model),
          members: await Promise.all(head.members.slice(1).map((m) => modelToArtifacts(m))),
          mode: head.info.mode,
          frames: options.frames,
          mask: options.mask,
          name: `framewise_${head.info.head?.type ?? 'head'}_${head.info.mode}`,
        },
        signal,
      );
      signal?.throwIfAborted();
      await writeFileAtomic(outFile, bytes);
      return {
        file: outFile,
        bytes: bytes.length,
        mode: head.info.mode,
        labels: head.info.labels,
        size: backbone.inputSize,
      };
    } finally {
      backbone.dispose();
    }
  } finally {
    await head.dispose();
  }
}
