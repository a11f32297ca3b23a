import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../../src/errors.js';
import { createFrameEmbedder } from '../../../src/engines/index.js';
import { createOnnxEmbedder } from '../../../src/engines/onnx/embedder.js';
import { onnxCachePaths } from '../../../src/engines/onnx/model.js';
import { selectBackend } from '../../../src/tfjs/backend.js';
import { normalizationParams, parseBackboneSpec } from '../../../src/embedding/backbone-spec.js';
import { isOptionError } from '../../../src/validate.js';
import { maxAbsDiff, prng, realFrames, testCacheDir } from '../../model/helpers.js';
import { tempDir } from '../../helpers.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

const root = tempDir('framewise-onnx-user-');
beforeAll(async () => {
  await selectBackend('wasm');
});

const dim = (d: number | string) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d });

/**
 * A one-conv model written the way exporters write them: float input, Conv (3 -> 4, 3x3, pad 1)
 * + Relu, then either the 4-D map or a 2-D [N, 4] pooled output. `layout` picks NCHW (a
 * Transpose-free torch-style graph) or NHWC (Transpose in, as tf2onnx writes).
 */
function convModel(
  file: string,
  kernel: Float32Array,
  layout: 'nchw' | 'nhwc',
  size: number | string,
  output: '4d' | '2d' | 'both',
): void {
  const nodes: object[] = [];
  let x = 'input';
  if (layout === 'nhwc') {
    nodes.push({
      opType: 'Transpose',
      input: ['input'],
      output: ['x_nchw'],
      attribute: [{ name: 'perm', type: 7, ints: [0, 3, 1, 2] }],
    });
    x = 'x_nchw';
  }
  nodes.push({
    opType: 'Conv',
    input: [x, 'W'],
    output: ['conv'],
    attribute: [
      { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
      { name: 'kernel_shape', type: 7, ints: [3, 3] },
    ],
  });
  nodes.push({ opType: 'Relu', input: ['conv'], output: ['relu'] });
  const outputs: object[] = [];
  let map = 'relu';
  if (layout === 'nhwc') {
    nodes.push({
      opType: 'Transpose',
      input: ['relu'],
      output: ['map_nhwc'],
      attribute: [{ name: 'perm', type: 7, ints: [0, 2, 3, 1] }],
    });
    map = 'map_nhwc';
  }
  if (output !== '2d')
    outputs.push({
      name: map,
      type: { tensorType: { elemType: FLOAT, shape: { dim: [dim('N'), dim('a'), dim('b'), dim('c')] } } },
    });
  if (output !== '4d') {
    nodes.push({ opType: 'GlobalAveragePool', input: ['relu'], output: ['gap'] });
    nodes.push({
      opType: 'Flatten',
      input: ['gap'],
      output: ['pooled'],
      attribute: [{ name: 'axis', type: 2, i: 1 }],
    });
    outputs.push({
      name: 'pooled',
      type: { tensorType: { elemType: FLOAT, shape: { dim: [dim('N'), dim(4)] } } },
    });
  }
  const inputShape =
    layout === 'nchw' ? [dim('N'), dim(3), dim(size), dim(size)] : [dim('N'), dim(size), dim(size), dim(3)];
  const model = onnx.ModelProto.fromObject({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'conv',
      node: nodes,
      initializer: [
        { name: 'W', dataType: FLOAT, dims: [4, 3, 3, 3], rawData: new Uint8Array(kernel.slice().buffer) },
      ],
      input: [{ name: 'input', type: { tensorType: { elemType: FLOAT, shape: { dim: inputShape } } } }],
      output: outputs,
    },
  });
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
}

/** The same conv in tfjs (NHWC, kernel [kh, kw, in, out]), ReLU, spatial mean: [n, 4]. */
function reference(
  frames: Uint8Array,
  n: number,
  S: number,
  kernel: Float32Array,
  normalize: Parameters<typeof normalizationParams>[0],
): Float32Array {
  const { scale, offset } = normalizationParams(normalize);
  return tf.tidy(() => {
    const x = tf
      .tensor4d(frames, [n, S, S, 3], 'int32')
      .toFloat()
      .mul(tf.tensor1d(scale))
      .add(tf.tensor1d(offset)) as tf.Tensor4D;
    const w = tf.tensor4d(kernel, [4, 3, 3, 3]).transpose([2, 3, 1, 0]) as tf.Tensor4D; // [out, in, kh, kw] -> [kh, kw, in, out]
    return tf
      .relu(tf.conv2d(x, w, 1, 'same'))
      .mean([1, 2])
      .dataSync() as Float32Array; // [n, 4]
  });
}

describe('an .onnx backbone', () => {
  const S = 8;
  const rand = prng(5);
  const kernel = Float32Array.from({ length: 4 * 3 * 3 * 3 }, () => rand() - 0.5);
  const frames = Uint8Array.from({ length: 3 * S * S * 3 }, () => Math.floor(rand() * 256));

  it.each<['nchw' | 'nhwc', '4d' | '2d', number | string]>([
    ['nchw', '4d', S],
    ['nchw', '2d', S],
    ['nhwc', '4d', S],
    ['nhwc', '2d', 'S'],
  ])(
    'reads the layout from the input (%s), pools a 4-D output, takes D from the output (%s output, size %s)',
    async (layout, output, size) => {
      const file = join(root, `conv-${layout}-${output}-${size}.onnx`);
      convModel(file, kernel, layout, size, output);
      const spec = {
        path: file,
        normalize: 'imagenet' as const,
        ...(typeof size === 'string' ? { inputSize: S } : {}),
      };
      const embedder = await createFrameEmbedder({ backbone: spec });
      try {
        expect(embedder.engine.name).toBe('onnx');
        expect(embedder.engine.reason).toContain(`${layout.toUpperCase()} float32 input normalised imagenet`);
        expect(embedder.inputSize).toBe(S);
        expect(embedder.dim).toBe(4);
        expect(embedder.backboneId).toMatch(new RegExp(`^conv-${layout}-${output}-${size}-[0-9a-f]{12}$`));
        const got = await embedder.embedClips(frames, [1, 3, S, S, 3]);
        const want = reference(frames, 3, S, kernel, 'imagenet');
        expect(Math.max(...want)).toBeGreaterThan(0.05);
        expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
      } finally {
        await embedder.dispose();
      }
    },
  );

  it('takes the named output, and the id changes with the settings that change the embeddings', async () => {
    const file = join(root, 'conv-both.onnx');
    convModel(file, kernel, 'nchw', S, 'both');
    const first = await createOnnxEmbedder({ backbone: { path: file } }); // first output: the 4-D map, pooled
    const named = await createOnnxEmbedder({ backbone: { path: file, output: 'pooled' } });
    const other = await createOnnxEmbedder({ backbone: { path: file, normalize: '0..1' } });
    try {
      expect(first.engine.reason).toContain("output 'relu', [N, 4, 8, 8] pooled globally");
      expect(named.engine.reason).toContain("output 'pooled')");
      const [a, b, c] = [
        await first.embedClips(frames, [3, 1, S, S, 3]),
        await named.embedClips(frames, [3, 1, S, S, 3]),
        await other.embedClips(frames, [3, 1, S, S, 3]),
      ];
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
      expect(maxAbsDiff(c, reference(frames, 3, S, kernel, '0..1'))).toBeLessThan(1e-5);
      expect(new Set([first.backboneId, named.backboneId, other.backboneId]).size).toBe(3);
      expect(first.backbone.spec).toEqual({
        path: file,
        inputSize: S,
        normalize: 'imagenet',
        output: 'relu',
      });
    } finally {
      await Promise.all([first.dispose(), named.dispose(), other.dispose()]);
    }
  });

  it('runs a model framewise converted (uint8 NHWC frames in) as it is, with the same embeddings', async () => {
    const registry = await createOnnxEmbedder({ cacheDir: testCacheDir() });
    const { model } = onnxCachePaths(testCacheDir(), 'mobilenet_v2', registry.backboneId);
    const file = await createOnnxEmbedder({ backbone: { path: model!, name: 'exported' } });
    try {
      expect(file.engine.reason).toContain('NHWC uint8 input, output');
      const data = realFrames('arrow/forward/zoom-pal.mp4', 2, 6);
      expect(
        maxAbsDiff(
          await file.embedClips(data, [1, 2, 224, 224, 3]),
          await registry.embedClips(data, [1, 2, 224, 224, 3]),
        ),
      ).toBe(0);
    } finally {
      await Promise.all([registry.dispose(), file.dispose()]);
    }
  });

  it.each<[string, (file: string) => void, object, RegExp]>([
    [
      'a dynamic size without inputSize',
      (f) => convModel(f, kernel, 'nhwc', 'S', '2d'),
      {},
      /has a dynamic size; give the frame size/,
    ],
    [
      'an inputSize the model does not take',
      (f) => convModel(f, kernel, 'nchw', S, '2d'),
      { inputSize: 16 },
      /takes 8x8 frames, not the 16 asked for/,
    ],
    [
      'an output it does not have',
      (f) => convModel(f, kernel, 'nchw', S, '2d'),
      { output: 'logits' },
      /no output named 'logits' \(outputs: pooled\)/,
    ],
    ['a file that is not ONNX', (f) => writeFileSync(f, 'not a model'), {}, /does not load in ONNX Runtime/],
  ])('rejects %s with a ModelError saying what it found', async (name, make, extra, message) => {
    const file = join(root, `bad-${name.replace(/\W+/g, '-')}.onnx`);
    make(file);
    const attempt = createFrameEmbedder({ backbone: { path: file, ...extra } });
    await expect(attempt).rejects.toThrow(ModelError);
    await expect(createFrameEmbedder({ backbone: { path: file, ...extra } })).rejects.toThrow(message);
  });

  it('is refused on the tfjs engine before any work', async () => {
    await expect(
      createFrameEmbedder({ backbone: { path: join(root, 'x.onnx') }, engine: 'tfjs' }),
    ).rejects.toThrow(/`backbone` and `engine` conflict: an .onnx backbone runs on the onnx engine/);
  });
});

describe('parseBackboneSpec() with a path or URL string', () => {
  it.each<[string, object, object]>([
    ['models/r18.onnx', {}, { path: 'models/r18.onnx' }],
    [
      'https://example.com/zoo/resnet50.onnx?download=1',
      { normalize: '0..1' },
      { url: 'https://example.com/zoo/resnet50.onnx?download=1', normalize: '0..1' },
    ],
    [
      '/m/model.json',
      { inputSize: 96, normalize: '-1..1' },
      { path: '/m/model.json', inputSize: 96, normalize: '-1..1' },
    ],
    [
      'file:///m/',
      { inputSize: 96, normalize: 'imagenet' },
      { url: 'file:///m/', inputSize: 96, normalize: 'imagenet' },
    ],
  ])('parses %s into a spec', (value, defaults, spec) => {
    expect(parseBackboneSpec('backbone', value, defaults)).toEqual(spec);
  });

  it.each<[string, object, RegExp]>([
    [
      '/m/model.json',
      { normalize: '0..1' },
      /Expected `size` with the tfjs model \/m\/model.json for `backbone`/,
    ],
    ['/m/model.json', { inputSize: 96 }, /Expected `normalize` with the tfjs model/],
    [
      'resnet',
      {},
      /one of 'mobilenet_v2', 'inception_v3' or a custom backbone object for `backbone` but received 'resnet'/,
    ],
  ])('rejects %s %j', (value, defaults, message) => {
    let caught: unknown;
    try {
      parseBackboneSpec('backbone', value, defaults);
    } catch (error) {
      caught = error;
    }
    expect(isOptionError(caught)).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });

  it('rejects embeddingLayer on an .onnx spec (it is `output` there)', () => {
    expect(() => parseBackboneSpec('backbone', { path: 'a.onnx', embeddingLayer: 'x' })).toThrow(
      /Expected `backbone.output`/,
    );
  });
});
