/**
 * Backbone specs, parsed once: the registry of named backbones (their weights ship inside
 * the `nsfwjs` npm package, so nothing is downloaded), custom models, normalisation. Pure:
 * no tfjs, so the runners and the CLI can validate a spec without loading an engine.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import {
  invalid,
  isPlainObject,
  LIMITS,
  nonEmptyString,
  optionError,
  positiveInteger,
  positiveNumber,
} from '../validate.js';

const require = createRequire(import.meta.url);

/**
 * How uint8 RGB maps to the backbone's input range. `{mean, std}` are on the [0, 1] scale;
 * `imagenet` is torchvision's mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225].
 */
export type Normalization =
  | '0..1'
  | '-1..1'
  | 'imagenet'
  | { mean: number | [number, number, number]; std: number | [number, number, number] };

const IMAGENET = {
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
};

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

/**
 * A user-supplied ONNX model (`.onnx`, by path or URL); it runs on the onnx engine. NCHW or
 * NHWC is read from its input shape, a 4-D output is pooled globally, D comes from the output.
 */
export interface OnnxBackbone {
  /** A name for ids and messages. @default the file name without `.onnx` */
  name?: string;
  /** URL of the .onnx file. Exactly one of `url` and `path`. */
  url?: string;
  /** Path of the .onnx file. */
  path?: string;
  /** Frames are resized to inputSize x inputSize. @default the model's input size (required when it is dynamic) */
  inputSize?: number;
  /** Ignored for a model that takes uint8 frames itself. @default 'imagenet' */
  normalize?: Normalization;
  /** The output to use. @default the model's first output */
  output?: string;
}

/** A backbone option, parsed: a registry name or a custom model. */
export type BackboneSpec = string | CustomBackbone | OnnxBackbone;

/** True for a spec that names an `.onnx` file (by path or URL). */
export function isOnnxBackbone(spec: unknown): spec is OnnxBackbone {
  return isOnnxLocation(spec);
}

function isOnnxLocation(spec: unknown): boolean {
  if (!isPlainObject(spec)) return false;
  const where =
    typeof spec.path === 'string'
      ? spec.path
      : typeof spec.url === 'string'
        ? spec.url.replace(/[?#].*$/, '')
        : '';
  return /\.onnx$/i.test(where);
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
  spec: BackboneSpec;
}

export interface RegistryEntry {
  nsfwjsName: 'MobileNetV2' | 'InceptionV3';
  inputSize: number;
  dim: number;
  normalize: Normalization;
  layer: string;
}

/** Named backbones; their weights ship in the `nsfwjs` npm package, so nothing is downloaded. */
export const BACKBONES: Readonly<Record<string, Readonly<RegistryEntry>>> = {
  mobilenet_v2: {
    nsfwjsName: 'MobileNetV2',
    inputSize: 224,
    dim: 1280,
    normalize: '0..1',
    layer: 'flatten_1',
  },
  inception_v3: {
    nsfwjsName: 'InceptionV3',
    inputSize: 299,
    dim: 2048,
    normalize: '0..1',
    layer: 'flatten_1',
  },
};
export const DEFAULT_BACKBONE = 'mobilenet_v2';

/** Per-channel `scale` and `offset` so that `y = x * scale + offset` for uint8 `x`. */
export function normalizationParams(normalize: Normalization): { scale: number[]; offset: number[] } {
  if (normalize === '0..1') return { scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] };
  if (normalize === '-1..1') return { scale: [2 / 255, 2 / 255, 2 / 255], offset: [-1, -1, -1] };
  if (normalize === 'imagenet') return normalizationParams(IMAGENET);
  const mean =
    typeof normalize.mean === 'number' ? [normalize.mean, normalize.mean, normalize.mean] : normalize.mean;
  const std =
    typeof normalize.std === 'number' ? [normalize.std, normalize.std, normalize.std] : normalize.std;
  return { scale: std.map((s) => 1 / (255 * s)), offset: mean.map((m, i) => -m / std[i]) };
}

export function validateNormalization(field: string, value: unknown): Normalization {
  if (value === '0..1' || value === '-1..1' || value === 'imagenet') return value;
  if (isPlainObject(value)) {
    for (const key of ['mean', 'std'] as const) {
      const v = value[key];
      const ok =
        typeof v === 'number' ||
        (Array.isArray(v) && v.length === 3 && v.every((n) => typeof n === 'number'));
      if (!ok) throw invalid(`${field}.${key}`, 'a number or an array of 3 numbers', v);
    }
    const std = value.std as number | number[];
    for (const s of Array.isArray(std) ? std : [std]) positiveNumber(`${field}.std`, s);
    return value as Normalization;
  }
  throw invalid(field, "'0..1', '-1..1', 'imagenet' or {mean, std}", value);
}

/** What a backbone given as a path or URL string takes from the other options (`size`, `normalize`). */
export interface BackboneDefaults {
  inputSize?: number;
  normalize?: Normalization;
}

/** A string that names a model file or folder rather than a registry entry. */
function isLocation(value: string): boolean {
  return /^(https?|file):\/\//i.test(value) || /[\\/]/.test(value) || /\.(onnx|json)$/i.test(value);
}

/**
 * Parses a backbone option once, at the boundary: a registry name, a model path or URL (an
 * `.onnx` file, or a tfjs `model.json` or its folder, which also needs `size` and
 * `normalize` from `defaults`), or a custom model object. Everything below works on what
 * this returns: a registry name or an object.
 */
export function parseBackboneSpec(
  field: string,
  value: unknown,
  defaults: BackboneDefaults = {},
): BackboneSpec {
  if (value === undefined) return DEFAULT_BACKBONE;
  if (typeof value === 'string') {
    if (Object.hasOwn(BACKBONES, value)) return value;
    if (!isLocation(value)) {
      throw invalid(
        field,
        `one of ${Object.keys(BACKBONES)
          .map((n) => `'${n}'`)
          .join(', ')} or a custom backbone object`,
        value,
      );
    }
    const where = /^(https?|file):\/\//i.test(value) ? { url: value } : { path: value };
    const spec: Record<string, unknown> = { ...where };
    if (defaults.inputSize !== undefined) spec.inputSize = defaults.inputSize;
    if (defaults.normalize !== undefined) spec.normalize = defaults.normalize;
    if (!isOnnxLocation(spec)) {
      // A tfjs model does not say how it was trained: both must be given.
      if (spec.inputSize === undefined)
        throw optionError(`Expected \`size\` with the tfjs model ${value} for \`${field}\`: its input size`);
      if (spec.normalize === undefined)
        throw optionError(
          `Expected \`normalize\` with the tfjs model ${value} for \`${field}\`: '0..1', '-1..1', 'imagenet' or {mean, std}`,
        );
    }
    return parseBackboneSpec(field, spec);
  }
  if (!isPlainObject(value)) throw invalid(field, 'a backbone name or a custom backbone object', value);
  if ((value.url === undefined) === (value.path === undefined)) {
    throw optionError(`Expected exactly one of \`${field}.url\` and \`${field}.path\``);
  }
  if (value.url !== undefined) nonEmptyString(`${field}.url`, value.url);
  if (value.path !== undefined) nonEmptyString(`${field}.path`, value.path);
  if (value.name !== undefined) nonEmptyString(`${field}.name`, value.name);
  if (isOnnxLocation(value)) {
    if (value.inputSize !== undefined) positiveInteger(`${field}.inputSize`, value.inputSize);
    if (value.normalize !== undefined) validateNormalization(`${field}.normalize`, value.normalize);
    if (value.output !== undefined) nonEmptyString(`${field}.output`, value.output);
    if (value.embeddingLayer !== undefined)
      throw optionError(
        `Expected \`${field}.output\` (the ONNX output name), not \`${field}.embeddingLayer\`, for an .onnx backbone`,
      );
    return value as unknown as OnnxBackbone;
  }
  if (value.embeddingLayer !== undefined) nonEmptyString(`${field}.embeddingLayer`, value.embeddingLayer);
  positiveInteger(`${field}.inputSize`, value.inputSize, LIMITS.size);
  validateNormalization(`${field}.normalize`, value.normalize);
  return value as unknown as CustomBackbone;
}

/** The version of the nsfwjs package that ships the registry weights (part of every registry id's cache key). */
export function nsfwjsVersion(): string {
  try {
    const main = require.resolve('nsfwjs');
    const pkg = join(main.slice(0, main.lastIndexOf(`${sep}dist${sep}`)), 'package.json');
    return JSON.parse(readFileSync(pkg, 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}
