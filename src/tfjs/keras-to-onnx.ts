/**
 * Keras topology + weights -> an ONNX graph, in plain JS (onnx-proto), no tfjs.
 *
 * The graph takes uint8 RGB frames NHWC `[N, S, S, 3]` (what the pipeline packs), casts
 * and normalises them inside the graph, runs NCHW (ONNX's layout), and gives the Keras
 * model's output `[N, D]` as `embedding`. A BatchNormalization becomes a per-channel
 * Mul + Add: callers convert the model that `foldBatchNorm` (`fold.ts`, the one place BN is
 * folded) has rewritten, so only the BN layers it could not fold are left. Spatial shapes are tracked through the graph so that TF's `same`
 * padding can be written as explicit (possibly asymmetric) pads.
 *
 * A layer type or setting without a mapping throws a `ModelError` naming the layer, so
 * `engine: 'auto'` can fall back to tfjs.
 */
import onnxProto from 'onnx-proto';
import { ModelError } from '../errors.js';
import { normalizationParams, type Normalization } from '../embedding/backbone-spec.js';

const { onnx } = onnxProto;

/** Bump when the graphs this writes change (part of the converted-model cache key). */
export const CONVERTER_VERSION = 2;
/** ONNX opset: Clip takes min/max as inputs (>= 11), Pad takes pads as an input (>= 11). */
export const OPSET = 13;

/** Keras weights of one layer, by kind (`kernel`, `bias`, `gamma`, `moving_mean`...). */
export interface KerasWeight {
  shape: number[];
  values: Float32Array;
}

/** What the converter reads: a tfjs `ModelArtifacts`-like object. */
export interface KerasSource {
  /** The Keras model JSON (`{class_name, config}`), or `{model_config: ...}`. */
  modelTopology?: unknown;
  weightSpecs?: ReadonlyArray<{ name: string; shape: number[]; dtype: string }>;
  /** One buffer, or the buffers of the shards in order. */
  weightData?: ArrayBuffer | ArrayBuffer[];
}

export interface ConvertOptions {
  /** Frames are inputSize x inputSize. */
  inputSize: number;
  normalize: Normalization;
  /** Written into the model's metadata. */
  name?: string;
  /** Stops the conversion at its next yield (it yields every few ms, so Ctrl-C gets through). */
  signal?: AbortSignal;
}

/**
 * Yields to the event loop when `budgetMs` has passed since the last yield, then checks the
 * signal: converting a backbone takes seconds of JS, and signal handlers must still run.
 */
function yielder(signal?: AbortSignal, budgetMs = 25): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < budgetMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    signal?.throwIfAborted();
    last = performance.now();
  };
}

/** Layer types the converter maps (the ones `mobilenet_v2` and `inception_v3` use, and a few more). */
export const SUPPORTED_LAYERS = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'BatchNormalization',
  'ReLU',
  'Activation',
  'ZeroPadding2D',
  'Add',
  'Multiply',
  'Concatenate',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'Flatten',
  'Dropout',
  'Dense',
] as const;

export type Json = Record<string, any>;
export interface LayerJson {
  name: string;
  class_name: string;
  config: Json;
  inbound_nodes: Array<Array<[string, number, number, Json?]>>;
}

/** A value in the graph: its ONNX name and its shape without the batch ([C, H, W] or [D]). */
export interface Value {
  name: string;
  shape: number[];
}

export type Attr = { name: string; type: number; i?: number; f?: number; ints?: number[]; s?: Uint8Array };
const A = onnx.AttributeProto.AttributeType;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const UINT8 = onnx.TensorProto.DataType.UINT8;

export const int = (name: string, i: number): Attr => ({ name, type: A.INT, i });
export const ints = (name: string, v: number[]): Attr => ({ name, type: A.INTS, ints: v });
export const float = (name: string, f: number): Attr => ({ name, type: A.FLOAT, f });

/** Exact little-endian bytes of a typed array, starting at byteOffset 0 (what `rawData` needs). */
function rawBytes(array: Float32Array | BigInt64Array): Uint8Array {
  const copy = array.byteOffset === 0 && array.byteLength === array.buffer.byteLength ? array : array.slice();
  // Every platform Node runs on here is little-endian; ONNX raw data is little-endian too.
  return new Uint8Array(copy.buffer, 0, copy.byteLength).slice();
}

function unsupported(layer: LayerJson, what: string): ModelError {
  return new ModelError(
    `ONNX conversion: layer '${layer.name}' (${layer.class_name}) ${what}; supported layer types: ${SUPPORTED_LAYERS.join(', ')}`,
  );
}

function pair(value: unknown, fallback?: [number, number]): [number, number] {
  if (value === null || value === undefined) {
    if (fallback) return fallback;
    throw new ModelError('ONNX conversion: missing a 2-d size');
  }
  if (typeof value === 'number') return [value, value];
  const [a, b] = value as number[];
  return [a, b];
}

/** TF's output size and pads for one spatial dim (`same`: the extra pad goes after). */
function padsFor(
  padding: string,
  size: number,
  k: number,
  stride: number,
  dilation: number,
): { out: number; before: number; after: number } {
  const span = (k - 1) * dilation + 1;
  if (padding === 'valid') return { out: Math.floor((size - span) / stride) + 1, before: 0, after: 0 };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + span - size, 0);
  const before = Math.floor(total / 2);
  return { out, before, after: total - before };
}

/** Builds the graph node by node; keeps initializers and names unique. */
export class GraphBuilder {
  readonly nodes: Json[] = [];
  readonly initializers: Json[] = [];
  private names = new Set<string>();

  unique(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.:/-]/g, '_');
    let name = clean;
    for (let i = 1; this.names.has(name); i++) name = `${clean}_${i}`;
    this.names.add(name);
    return name;
  }

  constant(base: string, dims: number[], values: Float32Array): string {
    const name = this.unique(base);
    this.initializers.push({ name, dataType: FLOAT, dims, rawData: rawBytes(values) });
    return name;
  }

  constantInt64(base: string, values: number[]): string {
    const name = this.unique(base);
    this.initializers.push({
      name,
      dataType: INT64,
      dims: [values.length],
      rawData: rawBytes(BigInt64Array.from(values.map(BigInt))),
    });
    return name;
  }

  node(opType: string, inputs: string[], base: string, attribute: Attr[] = []): string {
    const output = this.unique(base);
    this.nodes.push({ opType, input: inputs, output: [output], name: output, attribute });
    return output;
  }
}

export function layersOf(topology: unknown): {
  layers: LayerJson[];
  inputs: Array<[string, number, number]>;
  outputs: Array<[string, number, number]>;
} {
  let t = topology as Json;
  if (t?.model_config) t = t.model_config;
  if (!t || typeof t !== 'object' || !t.config || !Array.isArray(t.config.layers)) {
    throw new ModelError('ONNX conversion: the topology is not a Keras model config');
  }
  if (t.class_name === 'Sequential')
    throw new ModelError('ONNX conversion: a Sequential model config has no graph; save a functional model');
  return { layers: t.config.layers, inputs: t.config.input_layers, outputs: t.config.output_layers };
}

function joinBuffers(data: ArrayBuffer | ArrayBuffer[] | undefined): ArrayBuffer {
  if (data === undefined) return new ArrayBuffer(0);
  if (!Array.isArray(data)) return data;
  const out = new Uint8Array(data.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  return out.buffer;
}

/** Weights by layer name, then by kind (the part of the weight name after the last `/`). */
export function weightsOf(source: KerasSource): Map<string, Map<string, KerasWeight>> {
  const byLayer = new Map<string, Map<string, KerasWeight>>();
  const data = joinBuffers(source.weightData);
  let offset = 0;
  for (const spec of source.weightSpecs ?? []) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype !== 'float32')
      throw new ModelError(
        `ONNX conversion: weight '${spec.name}' is ${spec.dtype}, only float32 is converted`,
      );
    if (offset + size * 4 > data.byteLength)
      throw new ModelError(`ONNX conversion: the weight data ends before '${spec.name}'`);
    const values = new Float32Array(data.slice(offset, offset + size * 4));
    offset += size * 4;
    const cut = spec.name.lastIndexOf('/');
    const layer = spec.name.slice(0, cut);
    const kind = spec.name.slice(cut + 1).replace(/_\d+$/, '');
    if (!byLayer.has(layer)) byLayer.set(layer, new Map());
    byLayer.get(layer)!.set(kind, { shape: spec.shape, values });
  }
  return byLayer;
}

/** `[kh, kw, in, out]` -> `[out, in, kh, kw]`. */
function convKernel(w: KerasWeight): { dims: number[]; values: Float32Array } {
  const [kh, kw, cin, cout] = w.shape;
  const out = new Float32Array(w.values.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          out[((o * cin + i) * kh + y) * kw + x] = w.values[((y * kw + x) * cin + i) * cout + o];
  return { dims: [cout, cin, kh, kw], values: out };
}

/**
 * Depthwise `[kh, kw, C, M]` -> `[C*M, 1, kh, kw]` (output channel c*M + m, as TF orders them):
 * the same layout as a convolution from 1 channel to C*M.
 */
function depthwiseKernel(w: KerasWeight): { dims: number[]; values: Float32Array } {
  const [kh, kw, c, m] = w.shape;
  return convKernel({ ...w, shape: [kh, kw, 1, c * m] });
}

/** Per-channel scale and shift of an inference BatchNormalization, in float64. */
function bnAffine(
  layer: LayerJson,
  weights: Map<string, KerasWeight> | undefined,
  channels: number,
): { scale: Float64Array; shift: Float64Array } {
  const axis = layer.config.axis;
  const ax = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis;
  if (ax !== -1 && ax !== 3)
    throw unsupported(
      layer,
      `normalises axis ${JSON.stringify(axis)}, only the channel axis (-1 or 3) is converted`,
    );
  const get = (kind: string, fill: number): Float32Array => {
    const w = weights?.get(kind);
    if (w) return w.values;
    if (
      (kind === 'gamma' && layer.config.scale === false) ||
      (kind === 'beta' && layer.config.center === false)
    )
      return new Float32Array(channels).fill(fill);
    throw unsupported(layer, `has no '${kind}' weight`);
  };
  const gamma = get('gamma', 1);
  const beta = get('beta', 0);
  const mean = get('moving_mean', 0);
  const variance = get('moving_variance', 1);
  if (mean.length !== channels)
    throw unsupported(layer, `has ${mean.length} channels where its input has ${channels}`);
  const eps = layer.config.epsilon ?? 1e-3;
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + eps);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return { scale, shift };
}

/**
 * Converts a Keras functional model into ONNX model bytes. The input is uint8 frames
 * `[N, S, S, 3]` named `frames`; the output is the model's (single) output, `[N, D]`, named
 * `embedding`.
 */
export async function convertKerasToOnnx(source: KerasSource, options: ConvertOptions): Promise<Uint8Array> {
  const g = new GraphBuilder();
  g.unique('frames');
  const result = await appendKerasBackbone(g, source, { ...options, input: 'frames' });
  const embedding = g.node('Identity', [result.name], 'embedding');
  const S = options.inputSize;
  const D = result.shape[0];
  const model = onnx.ModelProto.fromObject({
    irVersion: 7,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'framewise',
    producerVersion: String(CONVERTER_VERSION),
    metadataProps: [
      { key: 'framewise.backbone', value: options.name ?? '' },
      { key: 'framewise.normalize', value: JSON.stringify(options.normalize) },
    ],
    graph: {
      name: options.name ?? 'backbone',
      node: g.nodes,
      initializer: g.initializers,
      input: [
        {
          name: 'frames',
          type: {
            tensorType: {
              elemType: UINT8,
              shape: { dim: [{ dimParam: 'N' }, { dimValue: S }, { dimValue: S }, { dimValue: 3 }] },
            },
          },
        },
      ],
      output: [
        {
          name: embedding,
          type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: D }] } } },
        },
      ],
    },
  });
  await new Promise((resolve) => setImmediate(resolve));
  options.signal?.throwIfAborted();
  return onnx.ModelProto.encode(model).finish();
}

/** What a backbone layer's ONNX mapping works with. */
interface LayerStep {
  g: GraphBuilder;
  layer: LayerJson;
  cfg: Json;
  /** The layer's inputs, converted; `x` is the first. */
  ins: Value[];
  x: Value;
  /** The layer's weights by kind (`kernel`, `bias`, ...). */
  w: Map<string, KerasWeight> | undefined;
  options: ConvertOptions & { input: string };
}

/** uint8 [N, S, S, 3] -> float32, normalised per channel, then NCHW [N, 3, S, S]. */
function inputLayer({ g, layer, cfg, options }: LayerStep): Value {
  const S = options.inputSize;
  const shape = cfg.batch_input_shape ?? cfg.batch_shape;
  if (!Array.isArray(shape) || shape.length !== 4 || (shape[3] !== 3 && shape[3] !== null))
    throw unsupported(layer, `has input shape ${JSON.stringify(shape)}; expected [batch, S, S, 3]`);
  for (const d of [shape[1], shape[2]])
    if (d !== null && d !== S)
      throw unsupported(layer, `has input shape ${JSON.stringify(shape)}, not ${S}x${S}`);
  const { scale, offset } = normalizationParams(options.normalize);
  const cast = g.node('Cast', [options.input], 'frames_float', [int('to', FLOAT)]);
  const mul = g.node('Mul', [cast, g.constant('norm_scale', [3], Float32Array.from(scale))], 'frames_scaled');
  const add = g.node(
    'Add',
    [mul, g.constant('norm_offset', [3], Float32Array.from(offset))],
    'frames_normalised',
  );
  const nchw = g.node('Transpose', [add], 'frames_nchw', [ints('perm', [0, 3, 1, 2])]); // [N, 3, S, S]
  return { name: nchw, shape: [3, S, S] };
}

/** Conv2D and DepthwiseConv2D as ONNX Conv (depthwise: one group per input channel). */
function convLayer({ g, layer, cfg, x, w }: LayerStep): Value {
  const cls = layer.class_name;
  if (x.shape.length !== 3) throw unsupported(layer, `reads a rank-${x.shape.length + 1} tensor`);
  const [cin, h, wd] = x.shape;
  const [kh, kw] = pair(cfg.kernel_size);
  const [sh, sw] = pair(cfg.strides, [1, 1]);
  const [dh, dw] = pair(cfg.dilation_rate, [1, 1]);
  const padding = cfg.padding ?? 'valid';
  if (padding !== 'valid' && padding !== 'same') throw unsupported(layer, `uses padding '${padding}'`);
  const kernelWeight = w?.get(cls === 'Conv2D' ? 'kernel' : 'depthwise_kernel');
  if (!kernelWeight) throw unsupported(layer, 'has no kernel weight');
  const groups = cls === 'Conv2D' ? (cfg.groups ?? 1) : cin;
  const kernel = cls === 'Conv2D' ? convKernel(kernelWeight) : depthwiseKernel(kernelWeight);
  const cout = kernel.dims[0];
  if (cls === 'Conv2D' && kernel.dims[1] * groups !== cin)
    throw unsupported(
      layer,
      `has a kernel for ${kernel.dims[1] * groups} input channels, its input has ${cin}`,
    );
  const bias = cfg.use_bias ? w?.get('bias') : undefined;
  if (cfg.use_bias && !bias) throw unsupported(layer, 'has use_bias but no bias weight');
  const ph = padsFor(padding, h, kh, sh, dh);
  const pw = padsFor(padding, wd, kw, sw, dw);
  const inputs = [x.name, g.constant(`${layer.name}/W`, kernel.dims, kernel.values)];
  if (bias) inputs.push(g.constant(`${layer.name}/B`, [cout], bias.values));
  const conv = g.node('Conv', inputs, layer.name, [
    ints('kernel_shape', [kh, kw]),
    ints('strides', [sh, sw]),
    ints('dilations', [dh, dw]),
    // [top, left, bottom, right]: TF `same` puts the odd pixel after (bottom/right).
    ints('pads', [ph.before, pw.before, ph.after, pw.after]),
    int('group', groups),
  ]);
  return activate(g, layer, cfg.activation ?? 'linear', { name: conv, shape: [cout, ph.out, pw.out] });
}

/** An inference BatchNormalization as one per-channel Mul and Add. */
function batchNormLayer({ g, layer, x, w }: LayerStep): Value {
  const channels = x.shape[0];
  const { scale, shift } = bnAffine(layer, w, channels);
  // [C, 1, 1] broadcasts over [N, C, H, W]; [C] over [N, C].
  const dims = x.shape.length === 3 ? [channels, 1, 1] : [channels];
  const mul = g.node(
    'Mul',
    [x.name, g.constant(`${layer.name}/scale`, dims, Float32Array.from(scale))],
    `${layer.name}_mul`,
  );
  return {
    name: g.node('Add', [mul, g.constant(`${layer.name}/shift`, dims, Float32Array.from(shift))], layer.name),
    shape: x.shape,
  };
}

function reluLayer({ g, layer, cfg, x }: LayerStep): Value {
  const slope = cfg.negative_slope ?? 0;
  const threshold = cfg.threshold ?? 0;
  if (threshold !== 0) throw unsupported(layer, `has threshold ${threshold}`);
  const max = cfg.max_value;
  if (slope !== 0 && max !== null && max !== undefined)
    throw unsupported(layer, 'has both negative_slope and max_value');
  if (slope !== 0)
    return { name: g.node('LeakyRelu', [x.name], layer.name, [float('alpha', slope)]), shape: x.shape };
  if (max === null || max === undefined)
    return { name: g.node('Relu', [x.name], layer.name), shape: x.shape };
  return { name: clip(g, x.name, 0, max, layer.name), shape: x.shape };
}

function zeroPaddingLayer({ g, layer, cfg, x }: LayerStep): Value {
  if (x.shape.length !== 3) throw unsupported(layer, `reads a rank-${x.shape.length + 1} tensor`);
  const p = cfg.padding;
  const [[t, b], [l, r]] =
    typeof p === 'number'
      ? [
          [p, p],
          [p, p],
        ]
      : Array.isArray(p[0])
        ? p
        : [
            [p[0], p[0]],
            [p[1], p[1]],
          ];
  // Pads as an input (opset >= 11): [N, C, H, W] begins, then ends.
  const pads = g.constantInt64(`${layer.name}/pads`, [0, 0, t, l, 0, 0, b, r]);
  return {
    name: g.node('Pad', [x.name, pads], layer.name, [
      { name: 'mode', type: A.STRING, s: new TextEncoder().encode('constant') },
    ]),
    shape: [x.shape[0], x.shape[1] + t + b, x.shape[2] + l + r],
  };
}

/** Add and Multiply of same-shaped inputs. */
function mergeLayer({ g, layer, ins, x }: LayerStep): Value {
  if (ins.some((v) => v.shape.join() !== x.shape.join()))
    throw unsupported(layer, `adds shapes ${ins.map((v) => `[${v.shape}]`).join(', ')}`);
  return {
    name: g.node(
      layer.class_name === 'Add' ? 'Sum' : 'Mul',
      ins.map((v) => v.name),
      layer.name,
    ),
    shape: x.shape,
  };
}

function concatenateLayer({ g, layer, cfg, ins, x }: LayerStep): Value {
  const rank = x.shape.length + 1;
  let axis = cfg.axis ?? -1;
  if (axis < 0) axis += rank;
  // NHWC axis -> NCHW axis (the channels are 1 in NCHW; a 2-D tensor keeps its axes).
  const onnxAxis = rank === 4 ? [0, 2, 3, 1][axis] : axis;
  const shape = [...x.shape];
  shape[onnxAxis - 1] = ins.reduce((sum, v) => sum + v.shape[onnxAxis - 1], 0);
  return {
    name: g.node(
      'Concat',
      ins.map((v) => v.name),
      layer.name,
      [int('axis', onnxAxis)],
    ),
    shape,
  };
}

/** MaxPooling2D and AveragePooling2D. */
function poolingLayer({ g, layer, cfg, x }: LayerStep): Value {
  if (x.shape.length !== 3) throw unsupported(layer, `reads a rank-${x.shape.length + 1} tensor`);
  const [kh, kw] = pair(cfg.pool_size, [2, 2]);
  const [sh, sw] = pair(cfg.strides, [kh, kw]);
  const padding = cfg.padding ?? 'valid';
  if (padding !== 'valid' && padding !== 'same') throw unsupported(layer, `uses padding '${padding}'`);
  const ph = padsFor(padding, x.shape[1], kh, sh, 1);
  const pw = padsFor(padding, x.shape[2], kw, sw, 1);
  const attrs = [
    ints('kernel_shape', [kh, kw]),
    ints('strides', [sh, sw]),
    ints('pads', [ph.before, pw.before, ph.after, pw.after]),
  ];
  // TF's average over `same` padding counts only the real pixels.
  const average = layer.class_name === 'AveragePooling2D';
  if (average) attrs.push(int('count_include_pad', 0));
  return {
    name: g.node(average ? 'AveragePool' : 'MaxPool', [x.name], layer.name, attrs),
    shape: [x.shape[0], ph.out, pw.out],
  };
}

/** GlobalAveragePooling2D and GlobalMaxPooling2D. */
function globalPoolingLayer({ g, layer, cfg, x }: LayerStep): Value {
  if (x.shape.length !== 3) throw unsupported(layer, `reads a rank-${x.shape.length + 1} tensor`);
  const pooled = g.node(
    layer.class_name === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool',
    [x.name],
    `${layer.name}_pool`,
  ); // [N, C, 1, 1]
  if (cfg.keepdims) return { name: pooled, shape: [x.shape[0], 1, 1] };
  return { name: g.node('Flatten', [pooled], layer.name, [int('axis', 1)]), shape: [x.shape[0]] }; // [N, C]
}

function flattenLayer({ g, layer, x }: LayerStep): Value {
  if (x.shape.length === 1) return x;
  // Keras flattens NHWC (H, W, C order); back to NHWC first unless H = W = 1.
  const nhwc =
    x.shape[1] === 1 && x.shape[2] === 1
      ? x.name
      : g.node('Transpose', [x.name], `${layer.name}_nhwc`, [ints('perm', [0, 2, 3, 1])]);
  return {
    name: g.node('Flatten', [nhwc], layer.name, [int('axis', 1)]),
    shape: [x.shape.reduce((a, b) => a * b, 1)],
  };
}

function denseLayer({ g, layer, cfg, x, w }: LayerStep): Value {
  if (x.shape.length !== 1)
    throw unsupported(layer, `reads a rank-${x.shape.length + 1} tensor; only [N, D] is converted`);
  const kernel = w?.get('kernel');
  if (!kernel) throw unsupported(layer, 'has no kernel weight');
  const units = kernel.shape[1];
  const bias = cfg.use_bias ? w?.get('bias')?.values : new Float32Array(units);
  if (!bias) throw unsupported(layer, 'has use_bias but no bias weight');
  const gemm = g.node(
    'Gemm',
    [
      x.name,
      g.constant(`${layer.name}/W`, kernel.shape, kernel.values),
      g.constant(`${layer.name}/B`, [units], bias),
    ],
    `${layer.name}_gemm`,
  );
  return activate(g, layer, cfg.activation ?? 'linear', { name: gemm, shape: [units] });
}

/** Each Keras layer class the converter takes, and its ONNX mapping. */
const BACKBONE_LAYERS: Readonly<Record<string, (step: LayerStep) => Value>> = {
  InputLayer: inputLayer,
  Conv2D: convLayer,
  DepthwiseConv2D: convLayer,
  BatchNormalization: batchNormLayer,
  ReLU: reluLayer,
  Activation: ({ g, layer, cfg, x }) => activate(g, layer, cfg.activation, x),
  ZeroPadding2D: zeroPaddingLayer,
  Add: mergeLayer,
  Multiply: mergeLayer,
  Concatenate: concatenateLayer,
  MaxPooling2D: poolingLayer,
  AveragePooling2D: poolingLayer,
  GlobalAveragePooling2D: globalPoolingLayer,
  GlobalMaxPooling2D: globalPoolingLayer,
  Flatten: flattenLayer,
  Dropout: ({ x }) => x,
  Dense: denseLayer,
};

/**
 * Appends a Keras backbone to a graph: `input` names uint8 frames `[N, S, S, 3]`; returns
 * the `[N, D]` output value (its shape without the batch). Used by the converter and by the
 * whole-model export.
 */
export async function appendKerasBackbone(
  g: GraphBuilder,
  source: KerasSource,
  options: ConvertOptions & { input: string },
): Promise<Value> {
  options.signal?.throwIfAborted();
  const pause = yielder(options.signal);
  const { layers, inputs, outputs } = layersOf(source?.modelTopology);
  const weights = weightsOf(source);
  if (inputs.length !== 1)
    throw new ModelError(`ONNX conversion: expected one image input, found ${inputs.length}`);
  if (outputs.length !== 1)
    throw new ModelError(`ONNX conversion: expected one output, found ${outputs.length}`);
  /** Keras tensor `layer:node:index` -> value in the graph. */
  const values = new Map<string, Value>();
  const key = (ref: [string, number, number, Json?] | [string, number, number]) =>
    `${ref[0]}:${ref[1]}:${ref[2]}`;

  for (const layer of layers) {
    await pause();
    const cfg = layer.config;
    if (cfg.data_format && cfg.data_format !== 'channels_last')
      throw unsupported(layer, `uses data_format '${cfg.data_format}'`);
    if (layer.inbound_nodes.length > 1)
      throw unsupported(layer, 'is called more than once (shared layers are not converted)');
    const ins: Value[] = (layer.inbound_nodes[0] ?? []).map((ref) => {
      const v = values.get(key(ref));
      if (!v) throw unsupported(layer, `reads '${ref[0]}', which was not converted before it`);
      return v;
    });
    const map = Object.hasOwn(BACKBONE_LAYERS, layer.class_name)
      ? BACKBONE_LAYERS[layer.class_name]
      : undefined;
    if (!map) throw unsupported(layer, 'has no ONNX mapping');
    values.set(
      `${layer.name}:0:0`,
      map({ g, layer, cfg, ins, x: ins[0], w: weights.get(layer.name), options }),
    );
  }

  const result = values.get(key(outputs[0]));
  if (!result) throw new ModelError(`ONNX conversion: the output '${outputs[0][0]}' was not produced`);
  if (result.shape.length !== 1) {
    throw new ModelError(
      `ONNX conversion: the output '${outputs[0][0]}' has shape [batch, ${result.shape}], expected [batch, D]`,
    );
  }
  return result;
}

/** Clip with min and max as inputs (opset >= 11). */
export function clip(g: GraphBuilder, input: string, min: number, max: number, base: string): string {
  return g.node(
    'Clip',
    [
      input,
      g.constant(`${base}/min`, [], Float32Array.of(min)),
      g.constant(`${base}/max`, [], Float32Array.of(max)),
    ],
    base,
  );
}

function activate(g: GraphBuilder, layer: LayerJson, activation: string, x: Value): Value {
  const base = layer.class_name === 'Activation' ? layer.name : `${layer.name}_${activation}`;
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return { name: g.node('Relu', [x.name], base), shape: x.shape };
    case 'relu6':
      return { name: clip(g, x.name, 0, 6, base), shape: x.shape };
    case 'sigmoid':
      return { name: g.node('Sigmoid', [x.name], base), shape: x.shape };
    case 'tanh':
      return { name: g.node('Tanh', [x.name], base), shape: x.shape };
    case 'elu':
      return { name: g.node('Elu', [x.name], base), shape: x.shape };
    case 'softplus':
      return { name: g.node('Softplus', [x.name], base), shape: x.shape };
    case 'swish':
    case 'silu': {
      const s = g.node('Sigmoid', [x.name], `${base}_sigmoid`);
      return { name: g.node('Mul', [x.name, s], base), shape: x.shape };
    }
    case 'softmax':
      // Keras: the last axis; in NCHW that is the channel axis 1, in [N, D] it is 1 too.
      return { name: g.node('Softmax', [x.name], base, [int('axis', 1)]), shape: x.shape };
    default:
      throw unsupported(layer, `uses activation '${activation}'`);
  }
}
