import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { cacheKey, decodeEntry, EmbeddingCache, encodeEntry, fileIdentity } from '../../src/embedding/cache.js';
import { decodeNpy, encodeNpy, npyHeader } from '../../src/output/npy.js';
import { csvRow, openCsv, openJsonl } from '../../src/output/sinks.js';

const dir = mkdtempSync(join(tmpdir(), 'fw-output-'));

describe('openJsonl()', () => {
  it('refuses an existing file without resume or force', async () => {
    const path = join(dir, 'exists.jsonl');
    writeFileSync(path, '{"path":"a"}\n');
    await expect(openJsonl(path)).rejects.toThrow(UsageError);
    await expect(openJsonl(path)).rejects.toThrow(/--resume.*--force/);
  });

  it('resume cuts a torn last line and reports the paths already written', async () => {
    const path = join(dir, 'torn.jsonl');
    writeFileSync(path, '{"path":"a.mp4","clips":[]}\n{"path":"b.mp4","error":{"code":"CORRUPT","message":"x"}}\n{"path":"c.mp4","cl');
    const { sink, resume: state } = await openJsonl(path, { resume: true });
    expect(state.records).toBe(2);
    expect(state.truncatedBytes).toBe('{"path":"c.mp4","cl'.length);
    expect(state.done.has('a.mp4') && state.done.has(resolve('b.mp4'))).toBe(true);
    expect(state.done.has('c.mp4')).toBe(false);
    await sink.writeLine(JSON.stringify({ path: 'c.mp4', clips: [] }));
    await sink.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.slice(0, 3).map((l) => JSON.parse(l).path)).toEqual(['a.mp4', 'b.mp4', 'c.mp4']);
    expect(lines[3]).toBe('');
  });

  it('force overwrites', async () => {
    const path = join(dir, 'force.jsonl');
    writeFileSync(path, 'old\n');
    const { sink } = await openJsonl(path, { force: true });
    await sink.writeLine('{"path":"x"}');
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe('{"path":"x"}\n');
  });

  it('an unwritable path is a UsageError before anything is written', async () => {
    await expect(openJsonl(join(dir, 'no', 'such', 'dir', 'out.jsonl'))).rejects.toThrow(/Cannot write the output/);
  });
});

describe('openCsv()', () => {
  it('quotes fields and resumes from the path column', async () => {
    expect(csvRow(['a,b', 'say "hi"', 1])).toBe('"a,b","say ""hi""",1');
    const path = join(dir, 'out.csv');
    const first = await openCsv(path, ['path', 'label']);
    await first.sink.writeLine(csvRow(['dir/a, b.mp4', 'forward']));
    await first.sink.close();
    appendFileSync(path, 'dir/c.mp4,for');
    const second = await openCsv(path, ['path', 'label'], { resume: true });
    expect([...second.resume.done]).toContain('dir/a, b.mp4');
    expect(second.resume.records).toBe(1);
    await second.sink.close();
    expect(readFileSync(path, 'utf8')).toBe('path,label\n"dir/a, b.mp4",forward\n');
  });
});

describe('npy', () => {
  it('pads the header so data starts at a multiple of 64', () => {
    const header = npyHeader([3, 16, 1280]);
    expect(header.length % 64).toBe(0);
    expect(header.subarray(10).toString('latin1')).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 16, 1280\), \} *\n$/);
  });

  it('round-trips, and numpy reads it when python3 has numpy', () => {
    const data = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i / 7);
    const file = encodeNpy(data, [2, 3, 4]);
    const back = decodeNpy(file);
    expect(back.shape).toEqual([2, 3, 4]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    const path = join(dir, 'x.npy');
    writeFileSync(path, file);
    let out: string;
    try {
      out = execFileSync('python3', ['-c', `import numpy as n; a=n.load(${JSON.stringify(path)}); print(a.dtype, a.shape, float(a[1,2,3]))`], { encoding: 'utf8' });
    } catch {
      return; // no numpy here: the byte-level checks above still hold
    }
    expect(out.trim()).toBe(`float32 (2, 3, 4) ${Math.fround(23 / 7)}`);
  });
});

describe('EmbeddingCache', () => {
  const video = {
    clips: [{ index: 0, start: 0, end: 1, timestamps: [0.25, 0.75], mask: [true, true] }],
    frames: 2,
    dim: 3,
    embeddings: Float32Array.from([1, 2, 3, 4, 5, 6]),
  };

  it('round-trips an entry and never reads a damaged one', async () => {
    const cache = new EmbeddingCache(join(dir, 'cache'));
    const key = cacheKey({ identity: { size: 1, mtimeMs: 2, headTail: 'h' }, sampling: { kind: 'uniform', frames: 2 }, size: 224, fit: 'cover', backboneId: 'b' });
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

  it('keys change with the sampling, the size and the backbone', () => {
    const base = { identity: { size: 1, mtimeMs: 2, headTail: 'h' }, sampling: { kind: 'uniform', frames: 2 }, size: 224, fit: 'cover', backboneId: 'b' };
    const keys = new Set([
      cacheKey(base),
      cacheKey({ ...base, sampling: { kind: 'uniform', frames: 3 } }),
      cacheKey({ ...base, size: 128 }),
      cacheKey({ ...base, backboneId: 'c' }),
      cacheKey({ ...base, identity: { ...base.identity, mtimeMs: 3 } }),
    ]);
    expect(keys.size).toBe(5);
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
