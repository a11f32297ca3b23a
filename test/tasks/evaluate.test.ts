/**
 * The parts of `evaluate()` that need no model run: the model content id, and option validation at the boundary. The end-to-end runs are in
 * test/cli/eval.test.ts.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluate, modelId } from '../../src/tasks/evaluate.js';
import { FRAMEWISE_VERSION } from '../../src/version.js';
import { tempDir } from '../helpers.js';

describe('modelId()', () => {
  it('hashes the labels, model.json and weights, and nothing else', async () => {
    const dir = tempDir('fw-modelid-');
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
    await expect(evaluate('/nonexistent/dataset', '/nonexistent/model', options as never)).rejects.toThrow(
      message,
    );
  });

  it('evaluate() rejects with the reason of an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(
      evaluate('/nonexistent/dataset', '/nonexistent/model', { signal: controller.signal }),
    ).rejects.toThrow('stop');
  });

  it('evaluate() reports a missing dataset as a usage error', async () => {
    await expect(evaluate('/nonexistent/dataset', '/nonexistent/model')).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/does not exist/),
    });
  });

  it("FRAMEWISE_VERSION is package.json's version", async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(FRAMEWISE_VERSION).toBe(pkg.version);
  });
});
