/**
 * The library API on real videos: createPipeline().embed(), loadClassifier().classify() with
 * the shipped sample model, input errors before any work, options validation, and abort.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveProcessCount } from '../../src/ingest/decoders/cli/ffmpeg.js';
import {
  createPipeline,
  isErrorRecord,
  loadClassifier,
  type ClassifyResult,
  type EmbedResult,
  type Pipeline,
  type ProgressEvent,
} from '../../src/index.js';
import { UsageError } from '../../src/errors.js';
import { ROOT } from '../cli/helpers.js';
import { fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const cache = tempDir('fw-pipeline-');
const samples = join(ROOT, 'samples');
let fw: Pipeline;

beforeAll(async () => {
  fw = await createPipeline({ frames: 4, cache });
});
afterAll(async () => {
  await fw?.close();
});

describe('createPipeline()', () => {
  it.each([
    [{ frames: 0 }, /Expected a positive integer for `frames` but received 0/],
    [{ sampling: 'every:2' }, /for `sampling` but received 'every:2'/],
    [
      { backend: 'gpu' },
      /Expected one of 'auto', 'tensorflow', 'wasm', 'cpu' for `backend` but received 'gpu'/,
    ],
    [{ concurrency: 1.5 }, /Expected a positive integer for `concurrency` but received 1.5/],
    [{ cache: '' }, /Expected a folder path or false for `cache` but received ''/],
  ])('rejects bad options %j before loading anything', async (options, message) => {
    await expect(createPipeline(options as never)).rejects.toThrow(message);
  });

  it('embed() yields Float32Array embeddings and error records, in input order', async () => {
    const events: ProgressEvent[] = [];
    const results: Array<EmbedResult | { path: string; error: { code: string } }> = [];
    for await (const r of fw.embed([join(samples, 'forward'), fixture('edge/zero-byte.mp4')], {
      onProgress: (e) => events.push(e),
    }))
      results.push(r);
    expect(results.map((r) => r.path.split('/').pop())).toEqual([
      'fill-left-rgb.mp4',
      'grow-disk-smpte.mp4',
      'zoom-pal.mp4',
      'zero-byte.mp4',
    ]);
    const ok = results.filter((r): r is EmbedResult => !isErrorRecord(r));
    expect(ok).toHaveLength(3);
    for (const r of ok) {
      expect(r.clips[0].embedding).toBeInstanceOf(Float32Array);
      expect(r.clips[0].embedding).toHaveLength(fw.dim);
      expect(r.clips[0].frames).toHaveLength(4 * fw.dim);
      expect(r.backbone).toBe(fw.backboneId);
    }
    const bad = results[3];
    expect(isErrorRecord(bad) && bad.error.code).toBe('EMPTY_FILE');
    expect(events.at(-1)).toMatchObject({
      final: true,
      videosDone: 4,
      videosTotal: 4,
      failures: 1,
      failuresByCode: { EMPTY_FILE: 1 },
    });
  });

  it('records name the decoder; libav and cli give embeddings within 1e-3', async () => {
    const videos = [
      join(samples, 'forward', 'zoom-pal.mp4'),
      fixture('edge/counter.mp4'),
      fixture('edge/rotated.mp4'),
    ];
    const run = async (decoder: 'libav' | 'cli'): Promise<EmbedResult[]> => {
      const pipeline = await createPipeline({ frames: 4, cache: false, decoder });
      try {
        const out: EmbedResult[] = [];
        for await (const r of pipeline.embed(videos)) if (!isErrorRecord(r)) out.push(r);
        return out;
      } finally {
        await pipeline.close();
      }
    };
    const [libav, cli] = [await run('libav'), await run('cli')];
    expect(libav.map((r) => r.decoder)).toEqual(['libav', 'libav', 'libav']);
    expect(cli.map((r) => r.decoder)).toEqual(['cli', 'cli', 'cli']);
    for (let v = 0; v < videos.length; v++) {
      expect(libav[v].clips[0].timestamps).toEqual(cli[v].clips[0].timestamps);
      const a = libav[v].clips[0].frames;
      const b = cli[v].clips[0].frames;
      expect(a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0)).toBeLessThan(1e-3);
    }
  });

  it('sends progress at least every second while one long video decodes', async () => {
    // tfjs-wasm (in its workers): slow enough that one video outlasts several heartbeats.
    const slow = await createPipeline({ frames: 96, cache: false, batch: 1, concurrency: 1, engine: 'tfjs' });
    try {
      const seen: number[] = [];
      const t0 = performance.now();
      for await (const r of slow.embed(fixture('edge/counter.mp4'), {
        onProgress: () => seen.push(performance.now()),
      }))
        expect(isErrorRecord(r)).toBe(false);
      const total = performance.now() - t0;
      const gaps = seen.slice(1).map((t, i) => t - seen[i]);
      expect(total).toBeGreaterThan(1500); // long enough for the check to mean something
      expect(Math.max(...gaps)).toBeLessThan(1600);
    } finally {
      await slow.close();
    }
  });

  it('loads the backbone only when a video misses the cache', async () => {
    const one = fixture('arrow/forward/zoom-pal.mp4');
    for await (const r of fw.embed(one)) expect(isErrorRecord(r)).toBe(false); // fills the cache
    // A new pipeline on the same cache knows the backbone from the first one's memo.
    const lazy = await createPipeline({ frames: 4, cache });
    try {
      expect(lazy.engine.name).toBe('none');
      for await (const r of lazy.embed(one)) expect((r as EmbedResult).cached).toBe(true);
      expect(lazy.engine.name).toBe('none');
      for await (const r of lazy.embed(fixture('edge/counter.mp4')))
        expect((r as EmbedResult).cached).toBe(false);
      expect(lazy.engine.name).toBe(fw.engine.name);
    } finally {
      await lazy.close();
    }
  });

  it('embed() reports input errors before any work', async () => {
    const iterator = fw.embed(['/no/such/folder']);
    await expect(iterator.next()).rejects.toThrow(UsageError);
    await expect(fw.embed([]).next()).rejects.toThrow(/Expected a path or a non-empty array of paths/);
  });

  it('embed() of a missing folder rejects before the backbone loads: nothing converted, nothing cached', async () => {
    const fresh = tempDir('fw-fresh-');
    const p = await createPipeline({ frames: 4, cache: fresh });
    try {
      await expect(p.embed(['/no/such/folder']).next()).rejects.toThrow(UsageError);
      expect(p.engine.name).toBe('none');
      expect(() => p.backboneId).toThrow(/`pipeline.backboneId` is known once the backbone has loaded/);
      expect(readdirSync(fresh)).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it('embed() rejects with the signal reason when aborted, and leaves no child process', async () => {
    const controller = new AbortController();
    const many = Array.from({ length: 6 }, (_, i) =>
      fixture(`arrow/${i % 2 ? 'forward' : 'reversed'}/zoom-pal.mp4`),
    );
    const seen: string[] = [];
    const run = (async () => {
      for await (const r of createNoCache(many, controller.signal)) seen.push(r.path);
    })();
    setTimeout(() => controller.abort(new Error('stop here')), 200);
    await expect(run).rejects.toThrow('stop here');
    expect(liveProcessCount()).toBe(0);
    // Already aborted: rejects at once.
    await expect(fw.embed(many, { signal: controller.signal }).next()).rejects.toThrow('stop here');
  });
});

async function* createNoCache(paths: string[], signal: AbortSignal) {
  const p = await createPipeline({ frames: 4, cache: false });
  try {
    yield* p.embed(paths, { signal });
  } finally {
    await p.close();
  }
}

describe('loadClassifier()', () => {
  it('classifies the samples with the shipped model, frames and sampling from framewise.json', async () => {
    const clf = await loadClassifier(join(samples, 'model'), { cache });
    try {
      expect(clf.labels).toEqual(['forward', 'reversed']);
      expect(clf.frames).toBe(16);
      const results: ClassifyResult[] = [];
      for await (const r of clf.classify(samples, { topK: 1 })) {
        if (isErrorRecord(r)) throw new Error(r.error.message);
        results.push(r);
      }
      expect(results).toHaveLength(6);
      for (const r of results) {
        expect(r.label).toBe(r.trueLabel);
        expect(r.topk).toHaveLength(1);
        expect(r.probs).toBeInstanceOf(Float32Array);
        expect(r.probs[0] + r.probs[1]).toBeCloseTo(1, 5);
        expect(r.clips[0].probs).toEqual(r.probs); // one clip: the video is its clip
      }
    } finally {
      await clf.close();
    }
  });

  it('a folder without a model is a ModelError', async () => {
    await expect(loadClassifier(samples)).rejects.toMatchObject({ code: 'MODEL' });
  });
});
