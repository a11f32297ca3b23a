/** RUNNERS is the one list of runners: one registered with one line is chosen by the options that ask for it. */
import { describe, expect, it } from 'vitest';
import { openRunner, RUNNERS, type RunnerEntry } from '../../src/runners/registry.js';
import { resolveOptions } from '../../src/runners/options.js';
import type { EmbedRunner } from '../../src/embedding/runner.js';

/** A runner written for this test: it embeds nothing and says each item failed, and it is asked for by `batch: 7`. */
const refuser: RunnerEntry = {
  help: 'refuses every video',
  takes: (options) => options.batch === 7,
  async open(options): Promise<EmbedRunner> {
    return {
      backboneId: 'none',
      dim: 1,
      size: options.size ?? 1,
      backbone: { id: 'none', inputSize: 1, dim: 1 } as never,
      engine: { name: 'none', reason: 'test' },
      async *run(items) {
        for (const item of items)
          yield [item, { path: item.path, error: { code: 'REFUSED', message: 'refused' } } as never];
      },
      async close() {},
    };
  },
};

describe('RUNNERS', () => {
  it('takes a new runner from one line, chosen when the options ask for it', async () => {
    expect(RUNNERS.names()).toEqual(['local', 'remote']);
    RUNNERS.register('refuser', refuser);
    try {
      const runner = await openRunner(resolveOptions({ batch: 7, size: 5 }));
      expect(runner.size).toBe(5);
      const out = [];
      for await (const [item, outcome] of runner.run([{ path: 'a.mp4' }, { path: 'b.mp4' }]))
        out.push([item.path, (outcome as { error: { code: string } }).error.code]);
      expect(out).toEqual([
        ['a.mp4', 'REFUSED'],
        ['b.mp4', 'REFUSED'],
      ]);
      await runner.close();
    } finally {
      RUNNERS.unregister('refuser');
    }
  });
});
