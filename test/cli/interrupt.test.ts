/**
 * Ctrl-C through the built CLI: the first SIGINT stops new work, kills the ffmpeg children,
 * keeps the finished results as complete lines, and exits with 130 within 2 s.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture, linkScenes } from '../fixtures.js';
import { assertBuilt, jsonl, startCli, waitForLines } from './helpers.js';
import { tempDir } from '../helpers.js';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';

// A marker in every path, so pgrep finds this test's ffmpeg children and nobody else's.
const marker = `fwsigint${process.pid}`;
const dir = tempDir(`${marker}-`);
const videos = join(dir, 'videos');

beforeAll(() => {
  assertBuilt();
  mkdirSync(videos);
  // Long enough to be mid-decode when the signal comes: the counter clip is 10 s.
  for (let i = 0; i < 16; i++) {
    const src = i % 2 ? 'edge/counter.mp4' : `arrow/forward/${readdirSync(fixture('arrow/forward'))[i]}`;
    symlinkSync(fixture(src), join(videos, `v${String(i).padStart(2, '0')}.mp4`));
  }
});

function ffmpegOnMarker(): string {
  const r = spawnSync('pgrep', ['-af', marker], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter((l) => l && /ffmpeg|ffprobe/.test(l))
    .join('\n');
}

describe('framewise embed and SIGINT', () => {
  it('exits 130 within 2 s, leaves no ffmpeg and only complete lines', async () => {
    const out = join(dir, 'out.jsonl');
    const { child, done } = startCli([
      'embed',
      videos,
      '--out',
      out,
      '--frames',
      '8',
      '--no-cache',
      '--concurrency',
      '2',
    ]);
    // Wait for the first finished video, so work is in full flight.
    await waitForLines(out, 1, 180_000);
    const sent = performance.now();
    child.kill('SIGINT');
    const run = await done;
    const ms = performance.now() - sent;
    expect(run.code).toBe(130);
    expect(ms).toBeLessThan(2000 + 300 /* process teardown on a loaded 2-core box */);
    expect(ffmpegOnMarker()).toBe('');
    const text = readFileSync(out, 'utf8');
    expect(text === '' || text.endsWith('\n')).toBe(true);
    const lines = jsonl<{ path: string }>(text);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThan(16);
    expect(new Set(lines.map((l) => l.path)).size).toBe(lines.length);
    expect(run.stderr).toMatch(/\(interrupted\)/);
  });
});

describe('framewise embed --decoder libav and SIGINT in the middle of the decode workers', () => {
  it('exits 130 within 2 s, and every decode worker and the ONNX worker end by themselves (exit code 0): none is terminated in a native call', async () => {
    // Three copies (three identities) of a 640x360 video, decoded frame by frame: each decode lasts a while.
    const long = join(dir, 'long');
    mkdirSync(long);
    const source = ['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '10'];
    execFileSync(resolveBinaries().ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      ...source,
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-y',
      join(long, 'a.mp4'),
    ]);
    for (const name of ['b.mp4', 'c.mp4']) copyFileSync(join(long, 'a.mp4'), join(long, name));
    const args = [
      'embed',
      long,
      '--out',
      join(dir, 'long.jsonl'),
      '--sampling',
      'fps:30',
      '--frames',
      '16',
      '--no-cache',
      '--decoder',
      'libav',
      '--concurrency',
      '2',
    ];
    const { child, done } = startCli(args, { NODE_DEBUG: 'framewise' });
    // Two decode workers and the ONNX worker started, and a moment for them to be inside their work.
    await new Promise<void>((resolve) => {
      let seen = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        const decoding = (seen.match(/decode pool: worker \d+ started/g) ?? []).length >= 2;
        if (decoding && /onnx pool: worker \d+ started/.test(seen)) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 400));
    const sent = performance.now();
    child.kill('SIGINT');
    const run = await done;
    expect(performance.now() - sent).toBeLessThan(2000 + 300 /* process teardown on a loaded 2-core box */);
    expect(run.code, run.stderr.slice(-2000)).toBe(130);
    const exits = [...run.stderr.matchAll(/decode pool: worker \d+ exited with code (\d+)/g)].map((m) =>
      Number(m[1]),
    );
    const said = run.stderr.split('\n').filter((l) => !/^ |^}|libav: |probe /.test(l));
    expect(exits, said.join('\n').slice(-3000)).toEqual([0, 0]);
    // The ONNX worker too: it let its run end, released the session and ended by itself.
    expect(run.stderr, said.join('\n').slice(-3000)).toMatch(/onnx pool: worker \d+ exited with code 0/);
  }, 120_000);
});

describe('framewise embed, SIGTERM, then --resume', () => {
  it('writes no record for the videos the signal cut short, so --resume does them: each video once, none failed', async () => {
    // Distinct files (the folder above links one video eight times, which a run embeds once).
    const distinct = join(dir, 'distinct');
    linkScenes(distinct, 20);
    const out = join(dir, 'term.jsonl');
    const args = ['embed', distinct, '--out', out, '--frames', '4', '--no-cache', '--concurrency', '1'];
    const { child, done } = startCli(args);
    await waitForLines(out, 2, 180_000);
    child.kill('SIGTERM');
    const run = await done;
    expect(run.code).toBe(130);
    const first = jsonl<{ path: string; error?: unknown }>(readFileSync(out, 'utf8'));
    expect(first.length).toBeLessThan(20);
    expect(first.filter((r) => r.error)).toEqual([]);
    // The summary counts no interrupted video as failed.
    expect(run.stderr).toMatch(/ 0 failed/);
    expect(run.stderr).not.toMatch(/ABORTED/);
    const resumed = await startCli([...args, '--resume', '--quiet']).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    const all = jsonl<{ path: string; error?: unknown }>(readFileSync(out, 'utf8'));
    expect(all.filter((r) => r.error)).toEqual([]);
    expect(all.map((r) => r.path).sort()).toEqual(
      readdirSync(distinct)
        .map((v) => join(distinct, v))
        .sort(),
    );
  });
});

describe('framewise embed --out - and a reader that goes away', () => {
  // Four times: the decode workers are mid-decode when the pipe closes, and an exit that cut one
  // off inside a native call aborted the process (SIGABRT) about every second run.
  it('exits 141 without a stack when stdout closes early (| head), and leaves no ffmpeg', async () => {
    for (let round = 0; round < 4; round++) {
      const { child, done } = startCli([
        'embed',
        videos,
        '--out',
        '-',
        '--frames',
        '8',
        '--no-cache',
        '--quiet',
      ]);
      // Read the first line, then close the pipe as `head -1` would.
      await new Promise<void>((resolve) => {
        child.stdout!.on('data', function onData(chunk: Buffer) {
          if (!chunk.includes(10)) return;
          child.stdout!.off('data', onData);
          child.stdout!.destroy();
          resolve();
        });
      });
      const run = await done;
      expect(run.code).toBe(141);
      expect(run.stderr).not.toMatch(/EPIPE|at .*\.js:\d+/);
      expect(ffmpegOnMarker()).toBe('');
    }
  });
});
