import { afterEach, describe, expect, it } from 'vitest';
import type { PipelineOptions } from '../../src/embedding/options.js';
import { normalizeSampling, resolveOptions } from '../../src/runners/options.js';
import { isOptionError } from '../../src/validate.js';

describe('resolveOptions()', () => {
  const saved = process.env.FRAMEWISE_CACHE;
  afterEach(() => {
    if (saved === undefined) delete process.env.FRAMEWISE_CACHE;
    else process.env.FRAMEWISE_CACHE = saved;
  });

  it('fills every default', () => {
    process.env.FRAMEWISE_CACHE = '/tmp/fw-cache';
    const resolved = resolveOptions();
    expect(resolved).toMatchObject({
      backbone: 'mobilenet_v2',
      frames: 16,
      size: undefined,
      fit: 'cover',
      sampling: { kind: 'uniform', frames: 16 },
      engine: 'auto',
      backend: 'auto',
      threads: 0,
      decoder: 'auto',
      seek: 'exact',
      batch: 4,
      workers: undefined,
      cache: '/tmp/fw-cache',
      timeoutMs: undefined,
    });
    expect(resolved.concurrency).toBeGreaterThanOrEqual(1);
    expect(resolved.concurrency).toBeLessThanOrEqual(2);
  });

  it('gives `frames` to a sampling string and to a sampling object', () => {
    expect(resolveOptions({ frames: 4, sampling: 'fps:2' }).sampling).toEqual(normalizeSampling('fps:2', 4));
    expect(resolveOptions({ frames: 4, sampling: 'fps:2' }).sampling.frames).toBe(4);
    expect(resolveOptions({ sampling: { kind: 'window', length: 2, stride: 1, frames: 8 } }).frames).toBe(8);
    expect(
      resolveOptions({ frames: 3, sampling: { kind: 'window', length: 2, stride: 1, frames: 8 } }).frames,
    ).toBe(3);
  });

  it('keeps a custom backbone and an explicit `cache: false`', () => {
    const backbone = { path: '/models/x', inputSize: 96, normalize: '-1..1' as const };
    expect(resolveOptions({ backbone, cache: false })).toMatchObject({ backbone, cache: false });
  });

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'fast', /an options object for `options` but received 'fast'/],
    ['frames 0', { frames: 0 }, /a positive integer for `frames` but received 0/],
    ['frames 2.5', { frames: 2.5 }, /a positive integer for `frames`/],
    ['size -1', { size: -1 }, /a positive integer for `size`/],
    ['fit', { fit: 'stretch' }, /one of 'cover', 'contain' for `fit` but received 'stretch'/],
    ['backend', { backend: 'gpu' }, /one of 'auto', 'tensorflow', 'wasm', 'cpu' for `backend`/],
    ['engine', { engine: 'torch' }, /one of 'auto', 'onnx', 'tfjs' for `engine` but received 'torch'/],
    ['concurrency 0', { concurrency: 0 }, /a positive integer for `concurrency`/],
    ['threads -1', { threads: -1 }, /a non-negative integer for `threads`/],
    ['decoder', { decoder: 'gpu' }, /one of 'auto', 'libav', 'cli' for `decoder` but received 'gpu'/],
    ['seek', { seek: 'nearest' }, /one of 'exact', 'keyframe' for `seek` but received 'nearest'/],
    ['batch "4"', { batch: '4' }, /a positive integer for `batch` but received '4'/],
    ['workers 1.5', { workers: 1.5 }, /a non-negative integer for `workers`/],
    ['cache ""', { cache: '' }, /a folder path or false for `cache`/],
    ['cache true', { cache: true }, /a folder path or false for `cache` but received true/],
    ['timeoutMs 0', { timeoutMs: 0 }, /a positive integer for `timeoutMs`/],
    ['sampling string', { sampling: 'every:3' }, /sampling/],
    ['sampling number', { sampling: 3 }, /a sampling string or object for `sampling` but received 3/],
    [
      'backbone name',
      { backbone: 'resnet' },
      /one of 'mobilenet_v2', 'inception_v3' or a custom backbone object for `backbone`/,
    ],
  ])('rejects a bad option before any work: %s', (_, options, message) => {
    let caught: unknown;
    try {
      resolveOptions(options as PipelineOptions);
    } catch (error) {
      caught = error;
    }
    expect(isOptionError(caught)).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });
});

describe('resolveOptions() resolves once', () => {
  it('takes what it gave as it is, and a copy with a signal or onPrepare added; a changed field is checked anew', () => {
    const resolved = resolveOptions({ frames: 4, backend: 'cpu' });
    expect(resolveOptions(resolved)).toBe(resolved);
    const onPrepare = () => {};
    const again = resolveOptions({ ...resolved, signal: new AbortController().signal, onPrepare } as never);
    expect(again.onPrepare).toBe(onPrepare);
    expect(again.sampling).toBe(resolved.sampling); // not resolved anew
    expect(resolveOptions({ ...resolved, frames: 8 }).frames).toBe(8);
    expect(() => resolveOptions({ ...resolved, backend: 'gpu' as never })).toThrow(
      /Expected one of 'auto', 'tensorflow', 'wasm', 'cpu' for `backend` but received 'gpu'/,
    );
  });
});
