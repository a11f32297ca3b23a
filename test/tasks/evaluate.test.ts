/**
 * The parts of `evaluate()` that need no model run: per-frame truth from segments, the model
 * content id, and option validation at the boundary. The end-to-end runs are in
 * test/cli/eval.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate, framewiseVersion, labelAt, modelId } from '../../src/tasks/evaluate.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('labelAt()', () => {
  const segments = [
    { start: 0, end: 1.5, label: 'bars' },
    { start: 1.5, end: 3, label: 'noise' },
    { start: 3.2, end: 4, label: 'fractal' },
  ];
  it.each([
    [0, 'bars'],
    [1.4999, 'bars'],
    [1.5, 'noise'], // [start, end): a boundary belongs to the later segment
    [2.99, 'noise'],
    [3.05, 'noise'], // in a gap: the nearest segment (0.05 from noise, 0.15 from fractal)
    [3.15, 'fractal'],
    [4, 'fractal'], // past the end: the last segment
    [-0.1, 'bars'],
  ])('labelAt(t = %f) is %s', (t, label) => {
    expect(labelAt(segments, t)).toBe(label);
  });
});

describe('modelId()', () => {
  it('hashes the labels, model.json and weights, and nothing else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fw-modelid-'));
    dirs.push(dir);
    await writeFile(join(dir, 'model.json'), '{"modelTopology":{}}');
    await writeFile(join(dir, 'weights.bin'), Buffer.from([1, 2, 3, 4]));
    await writeFile(join(dir, 'framewise.json'), '{"createdAt":"2026-01-01"}');
    const id = await modelId(dir, ['a', 'b']);
    expect(id).toMatch(/^sha256:[0-9a-f]{16}$/);
    // framewise.json (timestamps, training history) does not change the id.
    await writeFile(join(dir, 'framewise.json'), '{"createdAt":"2027-01-01"}');
    expect(await modelId(dir, ['a', 'b'])).toBe(id);
    expect(await modelId(dir, ['b', 'a'])).not.toBe(id);
    await writeFile(join(dir, 'weights.bin'), Buffer.from([1, 2, 3, 5]));
    expect(await modelId(dir, ['a', 'b'])).not.toBe(id);
  });
});

describe('evaluate() validation', () => {
  it.each([
    [{ topK: 0 }, /Expected a positive integer for `topK` but received 0/],
    [{ aggregate: 'median' }, /Expected one of 'mean', 'max' for `aggregate` but received 'median'/],
    [{ ignoreUnknownLabels: 'yes' }, /Expected a boolean for `ignoreUnknownLabels` but received 'yes'/],
    [{ out: '' }, /Expected a non-empty string for `out` but received ''/],
  ])('evaluate() rejects bad options before any work %#', async (options, message) => {
    await expect(evaluate('/nonexistent/dataset', '/nonexistent/model', options as never)).rejects.toThrow(message);
  });

  it('evaluate() rejects with the reason of an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(evaluate('/nonexistent/dataset', '/nonexistent/model', { signal: controller.signal })).rejects.toThrow('stop');
  });

  it('evaluate() reports a missing dataset as a usage error', async () => {
    await expect(evaluate('/nonexistent/dataset', '/nonexistent/model')).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/does not exist/) });
  });

  it('framewiseVersion() reads package.json', () => {
    expect(framewiseVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
