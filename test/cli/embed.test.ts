/**
 * `framewise embed` through the built CLI: JSONL records, per-frame embeddings, `.npy`
 * output that numpy reads, the cache (a second run decodes nothing and writes identical
 * embeddings), existing outputs (`--resume` / `--force`), and a clean stdout with `--out -`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy } from '../output/helpers.js';
import { assertBuilt, jsonl, ROOT, runCli, startCli } from './helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-cli-embed-');
const cache = join(dir, 'cache');
const samples = join(ROOT, 'samples');
const T = 4;
const common = ['--cache', cache, '--frames', String(T)];

interface Line {
  path: string;
  label?: string;
  backbone: string;
  dim: number;
  clips: Array<{
    start: number;
    end: number;
    timestamps: number[];
    mask: boolean[];
    embedding: number[];
    frames?: number[][];
  }>;
}

let first: { code: number | null; stderr: string; text: string };

beforeAll(async () => {
  assertBuilt();
  const out = join(dir, 'first.jsonl');
  const run = await runCli(['embed', samples, '--out', out, '--frame-embeddings', ...common]);
  first = { code: run.code, stderr: run.stderr, text: readFileSync(out, 'utf8') };
}, 300_000);

describe('framewise embed', () => {
  it('writes one JSONL line per video with clip and frame embeddings', () => {
    expect(first.code).toBe(0);
    const lines = jsonl<Line>(first.text);
    expect(lines).toHaveLength(6);
    expect(lines.map((l) => l.path)).toEqual([...lines.map((l) => l.path)].sort());
    for (const line of lines) {
      expect(line.backbone).toMatch(/^mobilenet_v2-[0-9a-f]+$/);
      expect(line.dim).toBe(1280);
      expect(['forward', 'reversed']).toContain(line.label);
      expect(line.clips).toHaveLength(1);
      const clip = line.clips[0];
      expect(clip.timestamps).toHaveLength(T);
      expect(clip.embedding).toHaveLength(1280);
      expect(clip.frames).toHaveLength(T);
      // The clip embedding is the mean of the real frames' embeddings.
      for (const d of [0, 7, 500, 1279]) {
        const mean = clip.frames!.reduce((s, f) => s + f[d], 0) / T;
        expect(clip.embedding[d]).toBeCloseTo(mean, 5);
      }
    }
    expect(first.stderr).toMatch(/6 ok, 0 failed, 0 from cache, 6 decoded/);
  });

  it('records name the decoder; without node-av (FRAMEWISE_LIBAV=off) auto says once that it uses the CLI', async () => {
    expect(jsonl<{ decoder: string }>(first.text).map((l) => l.decoder)).toEqual(Array(6).fill('libav'));
    const out = join(dir, 'no-libav.jsonl');
    const run = await runCli(
      ['embed', join(samples, 'forward'), '--out', out, '--no-cache', '--frames', String(T)],
      { FRAMEWISE_LIBAV: 'off' },
    );
    expect(run.code).toBe(0);
    expect(
      run.stderr.match(
        /libav was refused \(node-av did not load \(turned off by FRAMEWISE_LIBAV\)\); decoding with the ffmpeg CLI/g,
      ),
    ).toHaveLength(1);
    expect(jsonl<{ decoder: string }>(readFileSync(out, 'utf8')).map((l) => l.decoder)).toEqual([
      'cli',
      'cli',
      'cli',
    ]);
  });

  it('a second run over the cache decodes nothing and writes identical embeddings; its options are resolved once', async () => {
    const out = join(dir, 'second.jsonl');
    const run = await runCli(['embed', samples, '--out', out, '--frame-embeddings', ...common], {
      NODE_DEBUG: 'framewise',
    });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/6 ok, 0 failed, 6 from cache, 0 decoded/);
    // The CLI resolves the options and hands the resolved object down: no layer resolves them again.
    expect(run.stderr.match(/options: resolved/g)).toHaveLength(1);
    expect(readFileSync(out, 'utf8')).toBe(first.text);
  });

  it('--format npy writes float32 [clips, T, D] files and an index', async () => {
    const out = join(dir, 'npy');
    const run = await runCli(['embed', samples, '--out', out, '--format', 'npy', ...common, '--quiet']);
    expect(run.code).toBe(0);
    const index = jsonl<{ path: string; npy: string; shape: number[] }>(
      readFileSync(join(out, 'index.jsonl'), 'utf8'),
    );
    expect(index).toHaveLength(6);
    const firstLines = jsonl<Line>(first.text);
    for (const [i, entry] of index.entries()) {
      expect(entry.shape).toEqual([1, T, 1280]);
      const { shape, data } = decodeNpy(readFileSync(join(out, entry.npy)));
      expect(shape).toEqual([1, T, 1280]);
      // Same numbers as the JSONL frame embeddings (which are rounded to float32 precision).
      expect(data[5]).toBeCloseTo(firstLines[i].clips[0].frames![0][5], 6);
    }
    let numpy = '';
    try {
      numpy = execFileSync(
        'python3',
        [
          '-c',
          `import numpy as n; a=n.load(${JSON.stringify(join(out, index[0].npy))}); print(a.dtype, a.shape)`,
        ],
        { encoding: 'utf8' },
      );
    } catch {
      /* no numpy on this machine */
    }
    if (numpy) expect(numpy.trim()).toBe(`float32 (1, ${T}, 1280)`);
  });

  it('an existing output is a usage error (exit 2) unless --resume or --force', async () => {
    const out = join(dir, 'exists.jsonl');
    writeFileSync(out, '');
    const refused = await runCli(['embed', samples, '--out', out, ...common]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already exists; pass --resume to continue it or --force to overwrite it/);
    expect(readFileSync(out, 'utf8')).toBe('');
    const forced = await runCli(['embed', samples, '--out', out, ...common, '--force', '--quiet']);
    expect(forced.code).toBe(0);
    expect(jsonl(readFileSync(out, 'utf8'))).toHaveLength(6);
    // Resuming a complete output does nothing and writes nothing.
    const resumed = await runCli(['embed', samples, '--out', out, ...common, '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/0 ok, 0 failed, 6 skipped/);
    expect(jsonl(readFileSync(out, 'utf8'))).toHaveLength(6);
  });

  it('--out - keeps stdout for data: progress and the summary go to stderr', async () => {
    const run = await runCli(['embed', join(samples, 'forward'), '--out', '-', ...common]);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(JSON.parse(line).clips).toHaveLength(1);
    expect(run.stderr).toMatch(/3 ok, 0 failed/);
    expect(existsSync(join(ROOT, '-'))).toBe(false);
  });

  it('a FIFO or a device is a NOT_A_FILE record and is never opened (the cache on: its identity read would block)', async () => {
    const inputs = join(dir, 'special');
    mkdirSync(inputs);
    const video = readdirSync(join(samples, 'forward'))[0];
    copyFileSync(join(samples, 'forward', video), join(inputs, 'ok.mp4'));
    expect(spawnSync('mkfifo', [join(inputs, 'pipe.mp4')]).status).toBe(0);
    const out = join(dir, 'special.jsonl');
    const { child, done } = startCli(['embed', inputs, '/dev/zero', '--out', out, '--quiet', ...common]);
    // A blocked open ignores signals; do not let it hang the suite.
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const run = await done;
    clearTimeout(guard);
    expect(run.signal).toBeNull();
    expect(run.code).toBe(1);
    const records = jsonl<{ path: string; error?: { code: string; message: string } }>(
      readFileSync(out, 'utf8'),
    );
    const byPath = new Map(records.map((r) => [r.path, r]));
    expect(byPath.get(join(inputs, 'ok.mp4'))?.error).toBeUndefined();
    expect(byPath.get(join(inputs, 'pipe.mp4'))?.error).toMatchObject({
      code: 'NOT_A_FILE',
      message: expect.stringMatching(/named pipe/),
    });
    expect(byPath.get('/dev/zero')?.error).toMatchObject({
      code: 'NOT_A_FILE',
      message: expect.stringMatching(/a device/),
    });
    expect(run.stderr).toMatch(/NOT_A_FILE: 2/);
  });
});
