import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cacheKey,
  decodeEntry,
  EmbeddingCache,
  encodeEntry,
  fileIdentity,
} from '../../src/embedding/cache.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-cache-');
describe('EmbeddingCache', () => {
  const video = {
    clips: [{ index: 0, start: 0, end: 1, timestamps: [0.25, 0.75], mask: [true, true] }],
    frames: 2,
    dim: 3,
    embeddings: Float32Array.from([1, 2, 3, 4, 5, 6]),
  };

  it('round-trips an entry and never reads a damaged one', async () => {
    const cache = new EmbeddingCache(join(dir, 'cache'));
    const key = cacheKey({
      identity: { size: 1, mtimeMs: 2, headTail: 'h' },
      sampling: { kind: 'uniform', frames: 2 },
      size: 224,
      fit: 'cover',
      backboneId: 'b',
      decoder: 'libav',
    });
    expect(await cache.get(key)).toBeUndefined();
    await cache.set(key, video);
    const back = await cache.get(key);
    expect(Array.from(back!.embeddings)).toEqual([1, 2, 3, 4, 5, 6]);
    const entry = encodeEntry(key, video);
    // Torn (truncated), flipped payload byte, wrong key: all misses.
    expect(decodeEntry(entry.subarray(0, entry.length - 3), key)).toBeUndefined();
    const flipped = Buffer.from(entry);
    flipped[flipped.length - 1] ^= 0xff;
    expect(decodeEntry(flipped, key)).toBeUndefined();
    expect(decodeEntry(entry, 'other')).toBeUndefined();
  });

  it('never serves an entry whose JSON header was edited (spans, timestamps, mask)', async () => {
    const root = join(dir, 'edited');
    const cache = new EmbeddingCache(root);
    const key = cacheKey({
      identity: { size: 5, mtimeMs: 6, headTail: 'e' },
      sampling: { kind: 'uniform', frames: 2 },
      size: 224,
      fit: 'cover',
      backboneId: 'b',
      decoder: 'libav',
    });
    await cache.set(key, video);
    const folder = join(root, 'embeddings', 'v2', key.slice(0, 2));
    const file = join(folder, readdirSync(folder)[0]);
    const original = readFileSync(file);
    expect((await cache.get(key))?.clips[0].timestamps).toEqual([0.25, 0.75]);
    // The same length, so only a hash over the header can tell.
    for (const [from, to] of [
      ['0.25', '0.35'],
      ['"end":1', '"end":9'],
      ['[true,true]', '[true,null]'],
    ] as const) {
      const text = original.toString('latin1');
      expect(text).toContain(from);
      writeFileSync(file, Buffer.from(text.replace(from, to), 'latin1'));
      expect(await cache.get(key)).toBeUndefined();
    }
    writeFileSync(file, original);
    expect(await cache.get(key)).toBeDefined();
  });

  it('keys change with the sampling, the size, the backbone and the decoder', () => {
    const base = {
      identity: { size: 1, mtimeMs: 2, headTail: 'h' },
      sampling: { kind: 'uniform', frames: 2 },
      size: 224,
      fit: 'cover',
      backboneId: 'b',
      decoder: 'libav',
    };
    const keys = new Set([
      cacheKey(base),
      cacheKey({ ...base, sampling: { kind: 'uniform', frames: 3 } }),
      cacheKey({ ...base, size: 128 }),
      cacheKey({ ...base, backboneId: 'c' }),
      cacheKey({ ...base, identity: { ...base.identity, mtimeMs: 3 } }),
      cacheKey({ ...base, decoder: 'cli' }),
    ]);
    expect(keys.size).toBe(6);
    // Key order inside objects does not matter.
    expect(cacheKey({ ...base, sampling: { frames: 2, kind: 'uniform' } })).toBe(cacheKey(base));
  });

  it('fileIdentity hashes the head and the tail', async () => {
    const a = join(dir, 'big-a.bin');
    const b = join(dir, 'big-b.bin');
    const body = Buffer.alloc(300_000, 7);
    writeFileSync(a, body);
    const tail = Buffer.from(body);
    tail[tail.length - 1] = 8;
    writeFileSync(b, tail);
    expect((await fileIdentity(a)).headTail).not.toBe((await fileIdentity(b)).headTail);
  });
});
