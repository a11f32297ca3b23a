/**
 * The embedding engine on real videos, real ffmpeg and the real backbone: order, error
 * records, the cache (a second run decodes nothing and gives identical embeddings), and
 * abort (prompt, no ffmpeg left).
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECODERS, type DecoderEntry, type DecoderRequest } from '../../src/ingest/decoders.js';
import { liveProcessCount } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import type { Sampling } from '../../src/ingest/types.js';
import { createEmbedder } from '../../src/engines/tfjs/embedder.js';
import { EmbeddingCache } from '../../src/embedding/cache.js';
import type { FrameEmbedder } from '../../src/embedding/frame-embedder.js';
import { ingestStages, LocalRunner, type IngestStages } from '../../src/embedding/local-runner.js';
import type { ProgressEvent } from '../../src/embedding/progress.js';
import { isErrorRecord, type ErrorRecord, type VideoFrames } from '../../src/embedding/runner.js';
import { fixture, makeBgr4 } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const stages: IngestStages = ingestStages;
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
  more: {
    sampling?: Sampling;
    clipsPerDecode?: number;
    stages?: IngestStages;
    embedder?: FrameEmbedder;
    decoder?: DecoderRequest;
  } = {},
): LocalRunner {
  return new LocalRunner(
    more.embedder ?? embedder,
    more.stages ?? stages,
    {
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
      ...(more.decoder ? { decoder: more.decoder } : {}),
    },
    false /* ownsEmbedder */,
  );
}

/** The results of a run, and its final progress event. */
async function collect(e: LocalRunner, paths: string[], events?: ProgressEvent[]) {
  let last: ProgressEvent | undefined;
  const out: Array<VideoFrames | ErrorRecord> = [];
  const onProgress = (event: ProgressEvent): void => {
    last = event;
    events?.push(event);
  };
  for await (const [, r] of e.run(
    paths.map((path) => ({ path })),
    { onProgress },
  ))
    out.push(r);
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
    expect(out.map((r) => (isErrorRecord(r) ? r.error.code : 'ok'))).toEqual([
      'ok',
      'EMPTY_FILE',
      'ok',
      'NOT_A_VIDEO',
      'ok',
    ]);
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

  it("keyframe mode: a keyframe a clip already holds goes through the backbone once, and its row is that frame's", async () => {
    // The counter has a keyframe every 1/3 s: 16 planned times in 2 s snap to 6 of them.
    const e = new LocalRunner(
      embedder,
      stages,
      {
        sampling: { kind: 'window', length: 2, stride: 2, frames: 16, end: 2 },
        size: embedder.inputSize,
        fit: 'cover',
        concurrency: 1,
        threads: 1,
        batch: 2,
        inferenceConcurrency: 1,
        timeoutMs: undefined,
        seek: 'keyframe',
      },
      false /* ownsEmbedder */,
    );
    const { out, tracker } = await collect(e, [fixture('edge/counter.mp4')]);
    const [video] = out as VideoFrames[];
    const { mask, timestamps } = video.clips[0];
    const repeats = mask.filter((m) => !m).length;
    expect(video.clips).toHaveLength(1);
    expect(repeats).toBe(16 - new Set(timestamps).size);
    expect(repeats).toBeGreaterThan(8);
    expect(tracker.framesEmbedded).toBe(16 - repeats);
    const D = video.dim;
    const row = (k: number): Float32Array => video.embeddings.subarray(k * D, (k + 1) * D);
    mask.forEach((real, k) => {
      if (!real) expect(row(k)).toEqual(row(timestamps.indexOf(timestamps[k])));
    });
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
      engine: embedder.engine,
      backend: embedder.backend,
      backbone: embedder.backbone,
      embedClips: (data, shape, options) => embedder.embedClips(data, shape, options),
      dispose: async () => undefined,
      prepare: () => log.push('prepare'),
    };
    const logging: IngestStages = {
      ...stages,
      open: (decoder, path, options) => {
        log.push('probe');
        return stages.open(decoder, path, options);
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
    const many = Array.from({ length: 12 }, (_, i) => ({
      path: fixture(i % 2 ? 'arrow/forward/zoom-pal.mp4' : 'edge/counter.mp4'),
    }));
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
    expect(got).toHaveLength(1);
    expect(ms).toBeLessThan(60_000);
    expect(liveProcessCount()).toBe(0);
  });

  it('two names of one file (a symlink farm) are two results, embedded once through the cache', async () => {
    const cache = new EmbeddingCache(join(dir, 'farm-cache'));
    const farm = tempDir('fw-farm-');
    const names = ['a.mp4', 'b.mp4'].map((name) => join(farm, name));
    for (const name of names) symlinkSync(fixture('arrow/forward/zoom-pal.mp4'), name);
    const { out, tracker } = await collect(engine(cache, 2), names);
    expect(out.map((r) => r.path)).toEqual(names);
    expect(tracker.videosDecoded).toBe(1);
    expect(tracker.cacheHits).toBe(1);
    const [a, b] = out as VideoFrames[];
    expect(Array.from(b.embeddings)).toEqual(Array.from(a.embeddings));
  });

  it('run() aborted inside the for-await yields no further result, though the cache had the rest at hand', async () => {
    const cache = new EmbeddingCache(join(dir, 'abort-cache'));
    const path = fixture('arrow/forward/zoom-pal.mp4');
    await collect(engine(cache), [path]);
    // Cache hits finish at once: the window holds finished results when the signal aborts.
    const many = Array.from({ length: 12 }, () => ({ path }));
    const controller = new AbortController();
    const got: string[] = [];
    const reason = new DOMException('stop', 'AbortError');
    const run = async (): Promise<void> => {
      for await (const [item] of engine(cache, 2).run(many, { signal: controller.signal })) {
        got.push(item.path);
        if (got.length === 1) controller.abort(reason);
      }
    };
    await expect(run()).rejects.toBe(reason);
    expect(got).toHaveLength(1);
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
      open: async (decoder, path, options) => {
        const video = await stages.open(decoder, path, options);
        return {
          ...video,
          decode: (plans, o) => {
            parts.push(plans.length);
            return video.decode(plans, o);
          },
        };
      },
    };
    const path = fixture('edge/counter.mp4');
    const whole = await collect(engine(undefined, 2, { sampling }), [path]);
    const events: ProgressEvent[] = [];
    const inParts = await collect(
      engine(undefined, 2, { sampling, clipsPerDecode: 3, stages: counting }),
      [path],
      events,
    );
    const a = whole.out[0] as VideoFrames;
    const b = inParts.out[0] as VideoFrames;
    const clips = planClips(await probe(path), sampling).length;
    expect(clips).toBeGreaterThan(6);
    expect(parts).toEqual(Array.from({ length: Math.ceil(clips / 3) }, (_, i) => Math.min(3, clips - 3 * i)));
    expect(b.clips).toEqual(a.clips);
    expect(b.clips.map((c) => c.index)).toEqual(Array.from({ length: clips }, (_, i) => i));
    expect(b.embeddings.length).toBe(a.embeddings.length);
    let worst = 0;
    for (let i = 0; i < a.embeddings.length; i++)
      worst = Math.max(worst, Math.abs(a.embeddings[i] - b.embeddings[i]));
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
    expect(inParts.tracker).toMatchObject({
      final: true,
      videosDone: 1,
      clipsDone: clips,
      clipsPlanned: clips,
      videosPlanned: 1,
      framesDone: clips * T,
    });
  });

  it("makes a decoder's plain Error (swscale on a 4-bit bgr4 video) that video's record and goes on; framewise's own TypeError ends the run", async () => {
    const bgr4 = makeBgr4(join(dir, 'bgr4.nut'));
    const counter = fixture('edge/counter.mp4');
    for (const decoder of ['libav', 'cli'] as const) {
      const { out } = await collect(engine(undefined, 2, { decoder }), [bgr4, counter]);
      expect(out.map((r) => (isErrorRecord(r) ? r.error.code : 'ok'))).toEqual(['UNSUPPORTED', 'ok']);
      expect((out[0] as ErrorRecord).error.message).toMatch(/cannot be converted to RGB/);
    }
    const buggy: IngestStages = {
      ...stages,
      open: async (decoder, path, options) => ({
        ...(await stages.open(decoder, path, options)),
        decode: () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'data')")),
      }),
    };
    await expect(collect(engine(undefined, 2, { stages: buggy }), [counter])).rejects.toThrow(TypeError);
  });

  it('resolves its decoder once per run, and opens each video once however many parts it decodes in', async () => {
    const count = { resolved: 0, opened: 0, closed: 0, decoded: 0 };
    // The CLI decoder, counted.
    const counted: DecoderEntry = {
      help: 'the CLI, counted',
      async open(reason) {
        count.resolved++;
        const inner = await DECODERS.get('cli').open(reason);
        return {
          name: 'counted' as never,
          reason,
          async open(path, options) {
            count.opened++;
            const video = await inner.open(path, options);
            return {
              ...video,
              decode: (plans, o) => {
                count.decoded++;
                return video.decode(plans, o);
              },
              close: () => {
                count.closed++;
                return video.close();
              },
            };
          },
        };
      },
    };
    DECODERS.register('counted', counted);
    try {
      const sampling: Sampling = { kind: 'window', length: 4, stride: 4, frames: T };
      const two = [fixture('edge/counter.mp4'), fixture('arrow/forward/zoom-pal.mp4')];
      const runner = engine(undefined, 2, { sampling, clipsPerDecode: 2, decoder: 'counted' as never });
      const { out } = await collect(runner, two);
      expect(out.every((r) => !isErrorRecord(r))).toBe(true);
      expect(count).toMatchObject({ resolved: 1, opened: 2, closed: 2 });
      expect(count.decoded).toBeGreaterThan(2);
    } finally {
      DECODERS.unregister('counted');
    }
  });

  it("keys the cache by decoder: a --decoder cli run is not served the libav run's entry", async () => {
    const cache = new EmbeddingCache(join(dir, 'decoder-cache'));
    const one = [fixture('edge/counter.mp4')];
    const libav = await collect(engine(cache, 2, { decoder: 'libav' }), one);
    expect((libav.out[0] as VideoFrames).decoder).toBe('libav');
    const cli = await collect(engine(cache, 2, { decoder: 'cli' }), one);
    expect(cli.tracker.cacheHits).toBe(0);
    expect((cli.out[0] as VideoFrames).cached).toBe(false);
    expect((cli.out[0] as VideoFrames).decoder).toBe('cli');
    const again = await collect(engine(cache, 2, { decoder: 'libav' }), one);
    expect(again.tracker.cacheHits).toBe(1);
  });
});
