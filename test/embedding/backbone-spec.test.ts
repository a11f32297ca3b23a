import { describe, expect, it } from 'vitest';
import {
  BACKBONES,
  DEFAULT_BACKBONE,
  normalizationParams,
  nsfwjsVersion,
  parseBackboneSpec,
} from '../../src/embedding/backbone-spec.js';
import { isOptionError } from '../../src/validate.js';

const reject = (value: unknown): string => {
  try {
    parseBackboneSpec('backbone', value);
  } catch (error) {
    expect(isOptionError(error)).toBe(true);
    return (error as Error).message;
  }
  throw new Error('parseBackboneSpec accepted a bad spec');
};

describe('parseBackboneSpec()', () => {
  it('defaults to the registry default and takes every registry name', () => {
    expect(parseBackboneSpec('backbone', undefined)).toBe(DEFAULT_BACKBONE);
    for (const name of Object.keys(BACKBONES)) expect(parseBackboneSpec('backbone', name)).toBe(name);
  });

  it('takes a custom model by path or by URL, as given', () => {
    const byPath = {
      path: '/m/model.json',
      inputSize: 96,
      normalize: '-1..1',
      name: 'tiny',
      embeddingLayer: 'pool',
    };
    const byUrl = {
      url: 'file:///m/model.json',
      inputSize: 128,
      normalize: { mean: [0.485, 0.456, 0.406], std: 0.25 },
    };
    expect(parseBackboneSpec('backbone', byPath)).toBe(byPath);
    expect(parseBackboneSpec('backbone', byUrl)).toBe(byUrl);
  });

  it.each<[string, unknown, string]>([
    [
      'an unknown name',
      'resnet50',
      "one of 'mobilenet_v2', 'inception_v3' or a custom backbone object for `backbone` but received 'resnet50'",
    ],
    ['a prototype key', 'toString', "received 'toString'"],
    ['a number', 7, 'a backbone name or a custom backbone object for `backbone` but received 7'],
    [
      'neither path nor url',
      { inputSize: 96, normalize: '0..1' },
      'exactly one of `backbone.url` and `backbone.path`',
    ],
    [
      'both path and url',
      { path: '/a', url: 'file:///a', inputSize: 96, normalize: '0..1' },
      'exactly one of',
    ],
    [
      'an empty path',
      { path: '', inputSize: 96, normalize: '0..1' },
      'a non-empty string for `backbone.path`',
    ],
    ['no inputSize', { path: '/a', normalize: '0..1' }, 'a positive integer for `backbone.inputSize`'],
    [
      'a bad normalize',
      { path: '/a', inputSize: 96, normalize: '0..255' },
      "'0..1', '-1..1', 'imagenet' or {mean, std} for `backbone.normalize`",
    ],
    [
      'a mean of 2 channels',
      { path: '/a', inputSize: 96, normalize: { mean: [0, 0], std: 1 } },
      'an array of 3 numbers for `backbone.normalize.mean`',
    ],
    [
      'a zero std',
      { path: '/a', inputSize: 96, normalize: { mean: 0.5, std: 0 } },
      'a positive number for `backbone.normalize.std`',
    ],
    [
      'an empty layer name',
      { path: '/a', inputSize: 96, normalize: '0..1', embeddingLayer: '' },
      'a non-empty string for `backbone.embeddingLayer`',
    ],
  ])('rejects %s with a message naming the field', (_, value, message) => {
    expect(reject(value)).toContain(message);
  });
});

describe('normalizationParams()', () => {
  it('maps uint8 0 and 255 to each range’s ends', () => {
    for (const [normalize, lo, hi] of [
      ['0..1', 0, 1],
      ['-1..1', -1, 1],
    ] as const) {
      const { scale, offset } = normalizationParams(normalize);
      expect(offset[0]).toBeCloseTo(lo, 9);
      expect(255 * scale[2] + offset[2]).toBeCloseTo(hi, 9);
    }
  });

  it('applies mean and std on the 0..1 scale, per channel', () => {
    const { scale, offset } = normalizationParams({ mean: [0.5, 0.25, 0], std: [0.5, 0.25, 1] });
    const y = (x: number, c: number) => x * scale[c] + offset[c];
    expect(y(255, 0)).toBeCloseTo(1, 9); // (1 - 0.5) / 0.5
    expect(y(0, 1)).toBeCloseTo(-1, 9); // (0 - 0.25) / 0.25
    expect(y(51, 2)).toBeCloseTo(0.2, 9);
  });
});

describe('nsfwjsVersion()', () => {
  it('reads the installed package version', () => {
    expect(nsfwjsVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
