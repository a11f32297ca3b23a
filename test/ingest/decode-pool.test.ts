/**
 * The decode workers (ingest/decode-pool.ts) against the decoder on the main thread: the same
 * clips byte for byte, each call its own, the same error classes and codes; an abort that
 * rejects at once; and workers that are never terminated, but end by themselves (exit code 0).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestError } from '../../src/errors.js';
import { createDecoder, type VideoDecoder } from '../../src/ingest/decoders.js';
import { DecodePool, decodeWorkers, libuvPoolSize, pooledDecoder } from '../../src/ingest/decode-pool.js';
import { extractClips } from '../../src/ingest/extract.js';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import { COUNTER, fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';
import { assertBuilt } from '../cli/helpers.js';

const scratch = tempDir('framewise-decode-pool-');
/** A 20 s 640x360 video, decoded frame by frame: long enough to be mid-decode when the abort comes. */
const long = join(scratch, 'long.mp4');
/** A 48 s video with a keyframe every 2 s, for chunked decodes. */
const spread = join(scratch, 'spread.mp4');
let libav: VideoDecoder;

beforeAll(async () => {
  assertBuilt(); // the worker runs from dist
  const source = ['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '20'];
  execFileSync(resolveBinaries().ffmpeg, [
    '-hide_banner',
    '-loglevel',
    'error',
    ...source,
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-g',
    '300',
    '-y',
    long,
  ]);
  // 48 s, a keyframe every 2 s: 16 frames planned 3 s apart, far enough apart to cut between.
  execFileSync(resolveBinaries().ffmpeg, [
    '-hide_banner',
    '-loglevel',
    'error',
    ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=24', '-t', '48'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '48', '-y', spread],
  ]);
  libav = await createDecoder('libav');
}, 120_000);

const pools: DecodePool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});
function pool(workers: number): DecodePool {
  const p = new DecodePool({ workers });
  pools.push(p);
  return p;
}

describe('pooledDecoder()', () => {
  it('gives the clips the decoder gives on this thread, byte for byte, each call its own (3 videos on 2 workers)', async () => {
    const videos = [fixture(COUNTER.path), fixture('edge/vfr.mp4'), fixture('edge/rotated.mp4')];
    const pooled = pooledDecoder(libav, pool(2));
    const jobs = await Promise.all(
      videos.map(async (path) => {
        const info = await probe(path, { decoder: 'libav' });
        return { path, info, plans: planClips(info, { kind: 'uniform', frames: 6 }) };
      }),
    );
    const here = await Promise.all(
      jobs.map(({ path, info, plans }) =>
        extractClips(path, plans, { decoder: libav, probe: info, size: 32 }),
      ),
    );
    const there = await Promise.all(
      jobs.map(({ path, info, plans }) =>
        extractClips(path, plans, { decoder: pooled, probe: info, size: 32 }),
      ),
    );
    for (let v = 0; v < videos.length; v++) {
      expect(there[v].length).toBe(here[v].length);
      there[v].forEach((clip, i) => {
        const { data, ...rest } = clip;
        const { data: expected, ...expectedRest } = here[v][i];
        expect(rest).toEqual(expectedRest);
        expect(data).toBeInstanceOf(Uint8Array);
        expect(data.byteLength).toBe(data.buffer.byteLength); // its own buffer, moved whole
        expect(Buffer.from(data).equals(Buffer.from(expected))).toBe(true);
      });
    }
  }, 60_000);

  it('decodes one video’s exact frames in chunks on idle workers, the same clips byte for byte; keyframe mode whole', async () => {
    const info = await probe(spread, { decoder: 'libav' });
    const plans = [
      ...planClips(info, { kind: 'uniform', frames: 16 }),
      ...planClips(info, { kind: 'uniform', frames: 5 }),
    ];
    const decodes = pool(3);
    const pooled = pooledDecoder(libav, decodes);
    for (const seek of ['exact', 'keyframe'] as const) {
      const options = { probe: info, size: 48, seek };
      const here = await extractClips(spread, plans, { ...options, decoder: libav });
      const before = decodes.tasks;
      const there = await extractClips(spread, plans, { ...options, decoder: pooled });
      expect(decodes.tasks - before).toBe(seek === 'exact' ? 3 : 1);
      expect(there.length).toBe(here.length);
      there.forEach((clip, i) => {
        const { data, ...rest } = clip;
        const { data: expected, ...expectedRest } = here[i];
        expect(rest).toEqual(expectedRest);
        expect(Buffer.from(data).equals(Buffer.from(expected))).toBe(true);
      });
    }
  }, 60_000);

  it.each([['edge/truncated-nomoov.mp4'], ['edge/zero-byte.mp4'], ['edge/text.mp4']])(
    'fails on %s with the class and code it has on this thread',
    async (name) => {
      const path = fixture(name);
      const plans = [{ index: 0, start: 0, end: 1, timestamps: [0, 0.5], mask: [true, true] }];
      const options = { probe: { ...(await probe(fixture(COUNTER.path))), path }, size: 32 };
      const here = await extractClips(path, plans, { ...options, decoder: libav }).catch((e: unknown) => e);
      const there = await extractClips(path, plans, {
        ...options,
        decoder: pooledDecoder(libav, pool(1)),
      }).catch((e: unknown) => e);
      expect(here).toBeInstanceOf(Error);
      expect(there).toBeInstanceOf((here as Error).constructor);
      expect(there instanceof IngestError).toBe(here instanceof IngestError);
      expect((there as Error).message).toBe((here as Error).message);
      expect((there as { code?: string }).code).toBe((here as { code?: string }).code);
    },
    30_000,
  );

  it('rejects at once on abort; the worker is told, takes the next video, and on close ends by itself (exit code 0)', async () => {
    const decodes = pool(1);
    const pooled = pooledDecoder(libav, decodes);
    const info = await probe(long, { decoder: 'libav' });
    const plans = planClips(info, { kind: 'fps', fps: 30, frames: 16 });
    const controller = new AbortController();
    const running = extractClips(long, plans, {
      decoder: pooled,
      probe: info,
      size: 32,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 400));
    const reason = new Error('stop');
    const t0 = performance.now();
    controller.abort(reason);
    expect(await running).toBe(reason);
    expect(performance.now() - t0).toBeLessThan(50);
    // The same worker decodes the next video once its aborted decode has returned.
    const counter = await probe(fixture(COUNTER.path));
    const next = await extractClips(counter.path, planClips(counter, { kind: 'uniform', frames: 4 }), {
      decoder: pooled,
      probe: counter,
      size: 32,
    });
    expect(next[0].timestamps.length).toBe(4);
    // Closed in the middle of a decode: the caller's promise rejects, the worker finishes its native call and exits by itself.
    const again = extractClips(long, plans, { decoder: pooled, probe: info, size: 32 }).catch(
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 500));
    const closing = performance.now();
    expect(await decodes.close()).toEqual([0]);
    expect(performance.now() - closing).toBeLessThan(2000);
    expect(((await again) as Error).name).toBe('AbortError');
  }, 60_000);
});

describe('decodeWorkers() and libuvPoolSize()', () => {
  it.each([
    ['libav', 2, {}, 2, 2],
    ['libav', 4, {}, 2, 2],
    ['libav', 1, {}, 8, 1],
    ['cli', 2, {}, 2, 0],
    ['libav', 2, { FRAMEWISE_DECODE_WORKERS: '0' }, 2, 0],
    ['cli', 2, { FRAMEWISE_DECODE_WORKERS: '3' }, 2, 3],
  ] as const)(
    '%s with concurrency %d and %o on %d cores: %d workers',
    (decoder, concurrency, env, cores, expected) => {
      expect(decodeWorkers(decoder, concurrency, env, cores)).toBe(expected);
    },
  );

  it('rejects a bad FRAMEWISE_DECODE_WORKERS', () => {
    expect(() => decodeWorkers('libav', 2, { FRAMEWISE_DECODE_WORKERS: 'two' }, 2)).toThrow(
      /Expected a non-negative integer for `FRAMEWISE_DECODE_WORKERS` but received/,
    );
  });

  it('sizes the libuv pool at two threads a worker, never under 4, and bin/framewise.cjs sets the same size', () => {
    expect([1, 2, 3, 8].map((w) => libuvPoolSize(w))).toEqual([4, 4, 6, 16]);
    const bin = createRequire(import.meta.url)('../../bin/framewise.cjs') as {
      poolSize(cores: number): number;
    };
    expect([1, 2, 3, 8, 64].map((n) => bin.poolSize(n))).toEqual(
      [1, 2, 3, 8, 64].map((n) => libuvPoolSize(n)),
    );
  });
});
