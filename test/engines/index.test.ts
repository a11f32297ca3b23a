/**
 * ENGINES is the one list of engines: one registered with one line is checked by the run
 * options, offered by the CLI's help and run by `createFrameEmbedder()`.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFrameEmbedder, ENGINES, engineOf, type EngineEntry } from '../../src/engines/index.js';
import { resolveOptions } from '../../src/runners/options.js';
import type { FrameEmbedder } from '../../src/embedding/frame-embedder.js';
import { tempDir } from '../helpers.js';

/** An engine written for this test: the embedding of a clip is each frame's mean byte value (D = 1). */
const means: EngineEntry = {
  help: 'mean bytes',
  runs: () => true,
  async create(settings, choice): Promise<FrameEmbedder> {
    const info = { id: `means:${String(settings.backbone)}`, inputSize: 2, dim: 1 };
    return {
      backboneId: info.id,
      inputSize: info.inputSize,
      dim: info.dim,
      backbone: info as never,
      engine: { name: 'means', reason: `engine ${choice.request}` },
      async embedClips(data, [b, t, h, w, c]) {
        const frame = h * w * c;
        return Float32Array.from(
          { length: b * t },
          (_, i) => data.subarray(i * frame, (i + 1) * frame).reduce((s, v) => s + v, 0) / frame,
        );
      },
      async dispose() {},
    };
  },
};

describe('engineOf()', () => {
  it('splits what ran the backbone into the engine and, for tfjs, its backend', () => {
    expect(engineOf('onnx')).toEqual({ engine: 'onnx' });
    expect(engineOf('wasm')).toEqual({ engine: 'tfjs', backend: 'wasm' });
    expect(engineOf(undefined)).toEqual({});
  });
});

describe('ENGINES', () => {
  it('takes a new engine from one line: the run options, the CLI help and the factory read it', async () => {
    ENGINES.register('means', means);
    // Its own cache folder: the factory remembers a backbone's id there, and this engine's is not mobilenet_v2's.
    const cacheDir = tempDir('framewise-engines-');
    try {
      expect(ENGINES.requests()).toEqual(['auto', 'onnx', 'tfjs', 'means']);
      expect(resolveOptions({ engine: 'means' as never }).engine).toBe('means');
      expect(ENGINES.help()).toMatch(/\| means \(mean bytes\)$/);
      const embedder = await createFrameEmbedder({
        engine: 'means' as never,
        backbone: 'mobilenet_v2',
        cacheDir,
      });
      expect(embedder.engine).toEqual({ name: 'means', reason: 'engine means' });
      const clip = Uint8Array.from([0, 2, 4, 6, 10, 10, 10, 10]); // [B=1, T=2, H=2, W=1, C=2]
      expect([...(await embedder.embedClips(clip, [1, 2, 2, 1, 2 as 3]))]).toEqual([3, 10]);
      await embedder.dispose();
    } finally {
      ENGINES.unregister('means');
    }
    expect(() => resolveOptions({ engine: 'means' as never })).toThrow(
      /Expected one of 'auto', 'onnx', 'tfjs' for `engine` but received 'means'/,
    );
  });

  it('corrects a memo that names another backbone: that run stops once, the next starts right', async () => {
    ENGINES.register('means', means);
    const cacheDir = tempDir('framewise-engines-');
    try {
      const settings = { engine: 'means' as never, backbone: 'mobilenet_v2', cacheDir };
      await (await createFrameEmbedder(settings)).dispose(); // writes the memo
      const memoDir = join(cacheDir, 'backbone-ids');
      const [file] = readdirSync(memoDir);
      writeFileSync(join(memoDir, file), JSON.stringify({ id: 'stale', inputSize: 2, dim: 1 }));
      const stale = await createFrameEmbedder({ ...settings, lazy: true });
      expect(stale.backboneId).toBe('stale');
      const clip = new Uint8Array(8);
      await expect(stale.embedClips(clip, [1, 2, 2, 1, 2 as 3])).rejects.toThrow(
        /not the one remembered \(stale\); the memo is corrected, run again/,
      );
      await stale.dispose();
      const next = await createFrameEmbedder({ ...settings, lazy: true });
      expect(next.backboneId).toBe('means:mobilenet_v2');
      expect(next.engine.name).toBe('none'); // known from the memo, not loaded
      await next.dispose();
    } finally {
      ENGINES.unregister('means');
    }
  });
});
