/**
 * The library across machines: `startWorker()` in this process, `createPipeline` and
 * `loadClassifier` with `remote`, on a real redis-server. The results equal a local run's.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPipeline,
  isErrorRecord,
  loadClassifier,
  startWorker,
  type EmbedResult,
  type ProgressEvent,
  type WorkerHandle,
} from '../../src/index.js';
import { ROOT } from '../cli/helpers.js';
import { describeWithRedis, skipRedis, startRedis, type RedisServer } from './helpers.js';

const SAMPLES = join(ROOT, 'samples');
const MODEL = join(SAMPLES, 'model');
let redis: RedisServer;
let worker: WorkerHandle;

beforeAll(async () => {
  if (skipRedis) return;
  redis = await startRedis();
  worker = await startWorker({
    redis: redis.url,
    queue: 'lib',
    cache: false,
    concurrency: 1,
    roots: [SAMPLES],
  });
});

afterAll(async () => {
  await worker?.close({ handBack: true }).catch(() => undefined);
  await redis?.dispose();
});

async function embedAll(
  remote: boolean,
  onProgress?: (e: ProgressEvent) => void,
  seek?: 'keyframe',
): Promise<{ results: EmbedResult[]; engine: string }> {
  const pipeline = await createPipeline({
    frames: 4,
    cache: false,
    seek,
    ...(remote ? { remote: { redis: redis.url, queue: 'lib' } } : {}),
  });
  try {
    const results: EmbedResult[] = [];
    for await (const r of pipeline.embed([SAMPLES], { onProgress })) {
      if (isErrorRecord(r)) throw new Error(`${r.path}: ${r.error.message}`);
      results.push(r);
    }
    return { results, engine: pipeline.engine.name };
  } finally {
    await pipeline.close();
  }
}

describeWithRedis('createPipeline({ remote })', () => {
  it('gives the local results, in the same order, with the workers in the progress', async () => {
    const events: ProgressEvent[] = [];
    const remote = await embedAll(true, (e) => events.push(e));
    const local = await embedAll(false);
    expect(remote.results.map((r) => r.path)).toEqual(local.results.map((r) => r.path));
    remote.results.forEach((r, i) => {
      const want = local.results[i];
      expect(r.backbone).toBe(want.backbone);
      expect(r.clips.map((c) => c.timestamps)).toEqual(want.clips.map((c) => c.timestamps));
      expect(Math.max(...r.embeddings.map((v, j) => Math.abs(v - want.embeddings[j])))).toBeLessThan(1e-4);
    });
    expect(remote.engine).toBe(local.engine);
    expect(events.some((e) => e.queue?.workers === 1)).toBe(true);
    const final = events.at(-1)!;
    expect(final).toMatchObject({
      final: true,
      videosDone: local.results.length,
      videosDecoded: local.results.length,
      failures: 0,
    });
  });
});

describeWithRedis("createPipeline({ remote, seek: 'keyframe' })", () => {
  it('the seek mode travels with the jobs: the keyframes of a local keyframe run, not the exact frames', async () => {
    const remote = await embedAll(true, undefined, 'keyframe');
    const local = await embedAll(false, undefined, 'keyframe');
    const exact = await embedAll(false);
    expect(remote.results.map((r) => r.clips.map((c) => c.timestamps))).toEqual(
      local.results.map((r) => r.clips.map((c) => c.timestamps)),
    );
    expect(remote.results.map((r) => r.clips.map((c) => c.timestamps))).not.toEqual(
      exact.results.map((r) => r.clips.map((c) => c.timestamps)),
    );
  });
});

describeWithRedis('loadClassifier(model, { remote })', () => {
  it('labels the samples as a local classifier does', async () => {
    const labelsOf = async (remote: boolean): Promise<string[]> => {
      const classifier = await loadClassifier(MODEL, {
        cache: false,
        ...(remote ? { remote: { redis: redis.url, queue: 'lib' } } : {}),
      });
      try {
        const labels: string[] = [];
        for await (const r of classifier.classify([SAMPLES]))
          labels.push(isErrorRecord(r) ? r.error.code : `${r.path}:${r.label}:${r.score.toFixed(4)}`);
        return labels;
      } finally {
        await classifier.close();
      }
    };
    const remote = await labelsOf(true);
    expect(remote).toEqual(await labelsOf(false));
    expect(remote.length).toBe(6);
  });
});

describeWithRedis('startWorker()', () => {
  it('counts its jobs and stops on close()', async () => {
    const other = await startWorker({ redis: redis.url, queue: 'lib-close', cache: false, roots: [SAMPLES] });
    expect(other.name).toMatch(/^framewise@.+:\d+$/);
    const stats = await other.close();
    expect(stats).toEqual({ done: 0, errors: 0, forbidden: 0, refused: 0, handedBack: 0, active: 0 });
    await expect(other.closed).resolves.toEqual(stats);
  });
});

// Argument checks: no server is contacted (port 1 has none), so these run without Redis too.
describe('remote options', () => {
  it('createPipeline() rejects a bad remote before any work', async () => {
    await expect(createPipeline({ remote: { redis: 'localhost:6379' } })).rejects.toThrow(
      /Expected a Redis URL .* for `remote.redis`/,
    );
    await expect(createPipeline({ remote: { redis: 'redis://127.0.0.1:1', timeoutMs: 0 } })).rejects.toThrow(
      /remote.timeoutMs/,
    );
  });

  it('startWorker() rejects bad options before loading anything', async () => {
    await expect(startWorker({ redis: 'nope', roots: ['/'] })).rejects.toThrow(/Expected a Redis URL/);
    await expect(startWorker({ redis: 'redis://127.0.0.1:1', maxStalls: -1, roots: ['/'] })).rejects.toThrow(
      /maxStalls/,
    );
    await expect(startWorker({ redis: 'redis://127.0.0.1:1' } as never)).rejects.toThrow(
      /`roots` is required \(--root DIR, repeatable\)/,
    );
    await expect(
      startWorker({ redis: 'redis://127.0.0.1:1', roots: ['/'], allowHosts: ['http://x/'] }),
    ).rejects.toThrow(/a host name, an address or \*.domain for `allowHosts`/);
    await expect(startWorker({ redis: 'redis://127.0.0.1:1', roots: ['/'], maxJobBytes: 0 })).rejects.toThrow(
      /maxJobBytes/,
    );
  });
});
