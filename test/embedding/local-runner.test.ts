/**
 * The embedding engine on real videos, real ffmpeg and the real backbone: order, error
 * records, the cache (a second run decodes nothing and gives identical embeddings), and
 * abort (prompt, no ffmpeg left).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractClips } from '../../src/ingest/extract.js';
import { liveProcessCount } from '../../src/ingest/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import type { Sampling } from '../../src/ingest/types.js';
import { createEmbedder } from '../../src/engines/tfjs/embedder.js';
import { EmbeddingCache } from '../../src/embedding/cache.js';
import type { FrameEmbedder } from '../../src/embedding/frame-embedder.js';
import { LocalRunner, type IngestStages } from '../../src/embedding/local-runner.js';
import type { ProgressEvent } from '../../src/embedding/progress.js';
import { isErrorRecord, type ErrorRecord, type VideoFrames } from '../../src/embedding/runner.js';
import { fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const stages: IngestStages = { probe, planClips, extractClips };
const T = 4;
let embedder: FrameEmbedder;
const dir = tempDir('fw-engine-');

beforeAll(async () => {
  embedder = await createEmbedder({});
});
afterAll(async () => {
  await embedder?.dispose();
});

function engine(
  cache?: EmbeddingCache,
  concurrency = 2,
  more: { sampling?: Sampling; clipsPerDecode?: number; stages?: IngestStages; embedder?: FrameEmbedder } = {},
): LocalRunner {
  return new LocalRunner(more.embedder ?? embedder, more.stages ?? stages, {
    sampling: more.sampling ?? { kind: 'uniform', frames: T },
    clipsPerDecode: more.clipsPerDecode,
    size: embedder.inputSize,
    fit: 'cover',
    concurrency,
    threads: 1,
    batch: 2,
    inferenceConcurrency: 2,
    timeoutMs: undefined,
    store: cache,
  }, false /* ownsEmbedder */);
}

/** The results of a run, and its final progress event. */
async function collect(e: LocalRunner, paths: string[], events?: ProgressEvent[]) {
  let last: ProgressEvent | undefined;
  const out: Array<VideoFrames | ErrorRecord> = [];
  const onProgress = (event: ProgressEvent): void => {
    last = event;
    events?.push(event);
  };
  for await (const [, r] of e.run(paths.map((path) => ({ path })), { onProgress })) out.push(r);
  return { out, tracker: last! };
}

const videos = [
  fixture('arrow/forward/zoom-pal.mp4'),
  fixture('edge/zero-byte.mp4'),
  fixture('arrow/reversed/zoom-pal.mp4'),
  fixture('edge/text.mp4'),
  fixture('edge/counter.mp4'),
];

describe('LocalRunner.run()', () => {
  it('gives one result per video in input order, with error records for bad files', async () => {
    const events: ProgressEvent[] = [];
    const { out, tracker } = await collect(engine(), videos, events);
    expect(out.map((r) => r.path)).toEqual(videos);
    expect(out.map((r) => (isErrorRecord(r) ? r.error.code : 'ok'))).toEqual(['ok', 'EMPTY_FILE', 'ok', 'NOT_A_VIDEO', 'ok']);
    const ok = out.filter((r): r is VideoFrames => !isErrorRecord(r));
    for (const r of ok) {
      expect(r.embeddings).toBeInstanceOf(Float32Array);
      expect(r.embeddings.length).toBe(r.clips.length * T * embedder.dim);
      expect(r.clips[0].timestamps).toHaveLength(T);
      expect(r.cached).toBe(false);
    }
    // Forward and reversed versions of a scene differ frame by frame but hold the same frames.
    expect(ok[0].embeddings).not.toEqual(ok[1].embeddings);
    expect(tracker.videosDecoded).toBe(3);
    expect(tracker.failuresByCode).toEqual({ EMPTY_FILE: 1, NOT_A_VIDEO: 1 });
    const last = events[events.length - 1];
    expect(last.final).toBe(true);
    expect(last.videosDone).toBe(5);
    expect(last.framesEmbedded).toBe(3 * T);
  });

  it('a second run over the cache decodes nothing and gives identical embeddings', async () => {
    const cache = new EmbeddingCache(join(dir, 'cache'));
    const first = await collect(engine(cache), videos);
    const second = await collect(engine(cache), videos);
    expect(second.tracker.videosDecoded).toBe(0);
    expect(second.tracker.framesEmbedded).toBe(0);
    expect(second.tracker.cacheHits).toBe(3);
    first.out.forEach((a, i) => {
      const b = second.out[i];
      if (isErrorRecord(a)) return expect(b).toEqual(a);
      expect((b as VideoFrames).cached).toBe(true);
      expect(Array.from((b as VideoFrames).embeddings)).toEqual(Array.from(a.embeddings));
      expect((b as VideoFrames).clips).toEqual(a.clips);
    });
  });

  it('asks the embedder to prepare at a cache miss, before probing, and never for a hit', async () => {
    const cache = new EmbeddingCache(join(dir, 'prepare-cache'));
    const log: string[] = [];
    // The real embedder, with the optional prepare() that a lazily loaded one has.
    const watched: FrameEmbedder = {
      backboneId: embedder.backboneId,
      inputSize: embedder.inputSize,
      dim: embedder.dim,
      backend: embedder.backend,
      backbone: embedder.backbone,
      embedClips: (data, shape, options) => embedder.embedClips(data, shape, options),
      dispose: async () => undefined,
      prepare: () => log.push('prepare'),
    };
    const logging: IngestStages = {
      ...stages,
      probe: (path, options) => {
        log.push('probe');
        return probe(path, options);
      },
    };
    const one = [fixture('arrow/forward/zoom-pal.mp4')];
    await collect(engine(cache, 2, { embedder: watched, stages: logging }), one);
    expect(log).toEqual(['prepare', 'probe']);
    const again = await collect(engine(cache, 2, { embedder: watched, stages: logging }), one);
    expect(again.tracker.cacheHits).toBe(1);
    expect(log).toEqual(['prepare', 'probe']);
  });

  it('ends promptly on abort and leaves no ffmpeg', async () => {
    const controller = new AbortController();
    const many = Array.from({ length: 12 }, (_, i) => ({ path: fixture(i % 2 ? 'arrow/forward/zoom-pal.mp4' : 'edge/counter.mp4') }));
    const got: string[] = [];
    const started = performance.now();
    let caught: unknown;
    try {
      for await (const [item] of engine(undefined, 2).run(many, { signal: controller.signal })) {
        got.push(item.path);
        if (got.length === 1) controller.abort(new DOMException('stop', 'AbortError'));
      }
    } catch (error) {
      caught = error;
    }
    const ms = performance.now() - started;
    expect((caught as Error)?.name).toBe('AbortError');
    expect(got.length).toBeLessThan(12);
    expect(ms).toBeLessThan(60_000);
    expect(liveProcessCount()).toBe(0);
  });

  it('stopping the iteration early (break) stops the work', async () => {
    const many = Array.from({ length: 8 }, () => ({ path: fixture('edge/counter.mp4') }));
    for await (const _ of engine().run(many)) break;
    expect(liveProcessCount()).toBe(0);
  });

  it('decodes a video with many windows in parts of clipsPerDecode clips, with the same embeddings', async () => {
    const sampling: Sampling = { kind: 'window', length: 2, stride: 1, frames: T };
    const parts: number[] = [];
    const counting: IngestStages = {
      ...stages,
      extractClips: (path, plans, options) => {
        parts.push(plans.length);
        return extractClips(path, plans, options);
      },
    };
    const path = fixture('edge/counter.mp4');
    const whole = await collect(engine(undefined, 2, { sampling }), [path]);
    const events: ProgressEvent[] = [];
    const inParts = await collect(engine(undefined, 2, { sampling, clipsPerDecode: 3, stages: counting }), [path], events);
    const a = whole.out[0] as VideoFrames;
    const b = inParts.out[0] as VideoFrames;
    const clips = planClips(await probe(path), sampling).length;
    expect(clips).toBeGreaterThan(6);
    expect(parts).toEqual(Array.from({ length: Math.ceil(clips / 3) }, (_, i) => Math.min(3, clips - 3 * i)));
    expect(b.clips).toEqual(a.clips);
    expect(b.clips.map((c) => c.index)).toEqual(Array.from({ length: clips }, (_, i) => i));
    expect(b.embeddings.length).toBe(a.embeddings.length);
    let worst = 0;
    for (let i = 0; i < a.embeddings.length; i++) worst = Math.max(worst, Math.abs(a.embeddings[i] - b.embeddings[i]));
    expect(worst).toBeLessThan(1e-4);
    expect(inParts.tracker.videosDecoded).toBe(1);
    // Progress inside the video: its clips count as they finish, out of its plan, with an ETA.
    const inside = events.filter((e) => e.videosDone === 0 && e.clipsDone > 0);
    expect(inside.length).toBeGreaterThan(0);
    for (const e of inside) {
      expect(e.clipsPlanned).toBe(clips);
      expect(e.clipsDone).toBeLessThanOrEqual(clips);
      expect(e.framesDone).toBe(e.clipsDone * T);
      expect(e.etaMs).toBeGreaterThanOrEqual(0);
    }
    expect(inside.some((e) => e.clipsDone < clips && e.etaMs! > 0)).toBe(true);
    expect(events.map((e) => e.clipsDone)).toEqual([...events.map((e) => e.clipsDone)].sort((x, y) => x - y));
    expect(inParts.tracker).toMatchObject({ final: true, videosDone: 1, clipsDone: clips, clipsPlanned: clips, videosPlanned: 1, framesDone: clips * T });
  });
});
