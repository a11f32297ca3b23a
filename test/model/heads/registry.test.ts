/**
 * HEADS is the one list of heads: a head registered with one line is checked, built, trained,
 * and offered by the CLI, with nothing else edited; and an entry must say how it trains fast.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/tfjs/backend.js';
import { buildHead, resolveHeadConfig } from '../../../src/model/heads.js';
import { HEADS, type HeadEntry } from '../../../src/model/heads/registry.js';
import { fastStep } from '../../../src/model/fast-step.js';
import { trainHead } from '../../../src/model/train.js';

beforeAll(async () => {
  await selectBackend('auto');
});

/** A head written for this test: a ReLU projection of each frame, averaged over real frames in clip mode. */
const proj: HeadEntry = {
  help: 'a projection of each frame',
  build: (x, ctx) => {
    const y = ctx.tf.layers
      .dense({ units: ctx.units, activation: 'relu', name: 'fw_proj' })
      .apply(x) as typeof x; // [B, T, U]
    return ctx.sequences ? y : (new ctx.layers.MaskedMean({ name: 'fw_mean' }).apply(y) as typeof x); // [B, U]
  },
  fastStep: null,
};

describe('HEADS', () => {
  it('takes a new head from one line: the checks, buildHead, trainHead and the CLI help read it', async () => {
    HEADS.register('proj', proj);
    try {
      const config = resolveHeadConfig({ type: 'proj' as never, units: 5 });
      expect(config).toEqual({ type: 'proj', mode: 'clip', units: 5, dropout: 0.2 });
      for (const mode of ['clip', 'frame'] as const) {
        const model = buildHead({ ...config, mode }, { dim: 4, classes: 3 }, 1);
        expect(model.getLayer('fw_proj').getConfig().units).toBe(5);
        expect(model.outputs[0].shape).toEqual(mode === 'clip' ? [null, 3] : [null, null, 3]);
        // Its entry says it has no recurrence: the slow, general path trains it, by intent.
        expect(fastStep(model, { ...config, mode }, () => tf.scalar(0))).toBeUndefined();
        model.dispose();
      }
      const n = 8;
      const embeddings = Float32Array.from({ length: n * 2 * 4 }, (_, i) => ((i * 7) % 11) / 11 + 0.05);
      const labels = Array.from({ length: n }, (_, i) => (i % 2 ? 'a' : 'b'));
      const head = await trainHead(
        { embeddings, shape: [n, 2, 4], labels },
        { head: { type: 'proj' as never, units: 4 }, epochs: 2, valSplit: 0, seed: 1 },
      );
      expect(head.info.head.type).toBe('proj');
      head.dispose();
      expect(HEADS.help()).toMatch(/\| proj \(a projection of each frame\)$/);
    } finally {
      HEADS.unregister('proj');
    }
    expect(() => resolveHeadConfig({ type: 'proj' as never })).toThrow(
      /Expected one of 'lstm', 'gru', 'bilstm', 'mean' for `head.type` but received 'proj'/,
    );
  });

  it('requires every entry to say how it trains fast (null: through autodiff), so none falls back unseen', () => {
    // @ts-expect-error -- `fastStep` is required: a head without it does not compile.
    const forgotten: HeadEntry = { help: 'x', build: (x) => x };
    expect(forgotten.fastStep).toBeUndefined();
    for (const [name, entry] of HEADS.entries()) expect(entry.fastStep, name).not.toBeUndefined();
    const recurrent = HEADS.entries()
      .filter(([, e]) => e.fastStep !== null)
      .map(([name]) => name);
    expect(recurrent).toEqual(['lstm', 'gru', 'bilstm']);
  });
});
