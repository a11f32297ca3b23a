import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { FfmpegError, FramewiseError, IngestError } from '../../src/errors.js';
import {
  checkBinaries,
  liveProcessCount,
  resolveBinaries,
  runProcess,
} from '../../src/ingest/decoders/cli/ffmpeg.js';
import { looksLikeContainer } from '../../src/ingest/metadata.js';
import { probe } from '../../src/ingest/probe.js';
import { fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

describe('probe()', () => {
  it('reads the counter video: duration, rates, exact frame count, sizes, codec', async () => {
    const p = await probe(fixture('edge/counter.mp4'));
    expect(p).toMatchObject({
      duration: 10,
      startTime: 0,
      avgFrameRate: 24,
      nominalFrameRate: 24,
      frameCount: 240,
      frameCountExact: true,
      codedWidth: 160,
      codedHeight: 120,
      rotation: 0,
      width: 160,
      height: 120,
      codec: 'h264',
      pixelFormat: 'yuv420p',
      hasAudio: false,
    });
    expect(p.size).toBeGreaterThan(0);
  });

  it('reads MPEG-TS (the start time is not 0; works even where the bundled ffprobe crashes on it)', async () => {
    const p = await probe(fixture('edge/counter.ts'));
    expect(p).toMatchObject({
      width: 160,
      height: 120,
      codec: 'h264',
      avgFrameRate: 24,
      rotation: 0,
      formatName: 'mpegts',
    });
    expect(p.startTime).toBeGreaterThan(1);
    expect(p.duration).toBeCloseTo(10, 1);
    expect(Math.abs(p.frameCount - 240)).toBeLessThanOrEqual(1);
  });

  it('reports the rotation and the display size after rotation', async () => {
    const p = await probe(fixture('edge/rotated.mp4'));
    expect([p.codedWidth, p.codedHeight]).toEqual([320, 240]);
    expect([90, 270]).toContain(p.rotation);
    expect([p.width, p.height]).toEqual([240, 320]);
  });

  it('tells the average frame rate of a variable-rate video from its nominal rate', async () => {
    const p = await probe(fixture('edge/vfr.mp4'));
    expect(p.nominalFrameRate).toBe(30);
    expect(p.frameCount).toBe(45);
    expect(p.avgFrameRate).toBeGreaterThan(15);
    expect(p.avgFrameRate).toBeLessThan(20);
  });

  it('reads odd sizes, audio tracks and paths with spaces and non-ASCII characters', async () => {
    expect(await probe(fixture('edge/odd-321x179.mp4'))).toMatchObject({
      width: 321,
      height: 179,
      pixelFormat: 'yuv444p',
    });
    expect((await probe(fixture('edge/with-audio.mp4'))).hasAudio).toBe(true);
    expect(await probe(fixture('edge/path with spaces ünïcødé.mp4'))).toMatchObject({
      frameCount: 20,
      width: 160,
    });
    expect(await probe(fixture('edge/one-frame.mp4'))).toMatchObject({
      frameCount: 1,
      frameCountExact: true,
    });
  });

  it.each([
    ['edge/does-not-exist.mp4', 'ENOENT'],
    ['edge/zero-byte.mp4', 'EMPTY_FILE'],
    ['edge/audio-only.mp4', 'NOT_A_VIDEO'],
    ['edge/text.mp4', 'NOT_A_VIDEO'],
    ['edge', 'EISDIR'],
    ['edge/truncated-nomoov.mp4', 'CORRUPT'],
    ['edge/unsupported.mp4', 'UNSUPPORTED'],
  ])('rejects %s with code %s', async (path, code) => {
    const error = await probe(fixture(path)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IngestError);
    expect((error as IngestError).code).toBe(code);
    expect((error as IngestError).path).toBe(fixture(path));
    expect((error as IngestError).message).toContain(fixture(path));
  });

  it('says an image named .mp4 is NOT_A_VIDEO, not CORRUPT', async () => {
    const dir = tempDir('fw-probe-image-');
    const picture = sharp({ create: { width: 64, height: 48, channels: 3, background: '#f00' } });
    await picture.clone().png().toFile(join(dir, 'png.mp4'));
    await picture.clone().jpeg().toFile(join(dir, 'jpeg.mp4'));
    for (const name of ['png.mp4', 'jpeg.mp4']) {
      const error = await probe(join(dir, name)).catch((e: unknown) => e);
      expect((error as IngestError).code).toBe('NOT_A_VIDEO');
      expect((error as IngestError).message).toMatch(/is a still image/);
    }
  });

  it('rejects with the reason when aborted, before spawning anything', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(probe(fixture('edge/counter.mp4'), { signal: controller.signal })).rejects.toThrow('stop');
  });

  it('validates its arguments', async () => {
    await expect(probe('')).rejects.toThrow(/Expected a non-empty string for `path` but received ''/);
    await expect(probe(fixture('edge/counter.mp4'), { timeoutMs: -1 })).rejects.toThrow(
      /`options.timeoutMs`/,
    );
  });
});

describe('looksLikeContainer()', () => {
  it('knows MP4, Matroska and text apart', () => {
    expect(looksLikeContainer(Buffer.from('\0\0\0\x20ftypisom'))).toBe(true);
    expect(looksLikeContainer(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0]))).toBe(true);
    expect(looksLikeContainer(Buffer.from('hello, this is text'))).toBe(false);
  });
});

describe('ffmpeg binaries', () => {
  const saved = { ffmpeg: process.env.FFMPEG_PATH, ffprobe: process.env.FFPROBE_PATH };
  afterEach(() => {
    for (const [key, value] of [
      ['FFMPEG_PATH', saved.ffmpeg],
      ['FFPROBE_PATH', saved.ffprobe],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('resolveBinaries() prefers FFMPEG_PATH and FFPROBE_PATH over the packages', () => {
    delete process.env.FFMPEG_PATH;
    delete process.env.FFPROBE_PATH;
    const fromPackages = resolveBinaries();
    expect(fromPackages).toMatchObject({ ffmpegSource: 'package', ffprobeSource: 'package' });
    expect(fromPackages.ffmpeg).toMatch(/ffmpeg$/);
    process.env.FFMPEG_PATH = '/opt/x/ffmpeg';
    expect(resolveBinaries()).toMatchObject({
      ffmpeg: '/opt/x/ffmpeg',
      ffmpegSource: 'env',
      ffprobe: fromPackages.ffprobe,
    });
  });

  it('checkBinaries() fails with one FFMPEG_NOT_FOUND error that says how to fix it', async () => {
    process.env.FFPROBE_PATH = '/nonexistent/ffprobe';
    const error = await checkBinaries().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FramewiseError);
    expect((error as FramewiseError).code).toBe('FFMPEG_NOT_FOUND');
    expect((error as Error).message).toMatch(
      /ffprobe at \/nonexistent\/ffprobe \(from FFPROBE_PATH\) does not run/,
    );
    expect((error as Error).message).toMatch(/FFMPEG_PATH and FFPROBE_PATH/);
    // probe() by the cli decoder goes through the same check.
    await expect(probe(fixture('edge/counter.mp4'), { decoder: 'cli' })).rejects.toMatchObject({
      code: 'FFMPEG_NOT_FOUND',
    });
    delete process.env.FFPROBE_PATH;
    if (saved.ffprobe) process.env.FFPROBE_PATH = saved.ffprobe;
    expect((await checkBinaries()).ffprobeVersion).toMatch(/^ffprobe version/);
  });

  it('runProcess() rejects with FfmpegError carrying the command, exit code and stderr tail', async () => {
    const { ffmpeg } = resolveBinaries();
    const error = await runProcess(ffmpeg, [
      '-hide_banner',
      '-i',
      fixture('edge/text.mp4'),
      '-f',
      'null',
      '-',
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfmpegError);
    const e = error as FfmpegError;
    expect(e.code).toBe('FFMPEG');
    expect(e.exitCode).toBe(1);
    expect(e.signal).toBeNull();
    expect(e.command.startsWith(ffmpeg)).toBe(true);
    expect(e.command).toContain('text.mp4');
    expect(e.stderr).toMatch(/Invalid data found/);
    expect(e.message).toMatch(/failed with exit code 1: .*Invalid data found/s);
  });

  it('runProcess() escalates to SIGKILL when SIGTERM is ignored, and settles only after the exit', async () => {
    // A real child that ignores SIGTERM (the disposition survives exec).
    const controller = new AbortController();
    const running = runProcess('/bin/sh', ['-c', 'trap "" TERM; exec sleep 30'], {
      signal: controller.signal,
      killGraceMs: 200,
    }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    controller.abort(new Error('stop'));
    expect(await running).toEqual(new Error('stop'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(liveProcessCount()).toBe(0);
  });

  it('runProcess() kills on timeout and rejects with code TIMEOUT', async () => {
    const { ffmpeg } = resolveBinaries();
    const t0 = Date.now();
    // A source that never ends: only the timeout stops it.
    const error = await runProcess(
      ffmpeg,
      ['-hide_banner', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=64x64:r=5', '-f', 'null', '-'],
      { timeoutMs: 300 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfmpegError);
    expect((error as FfmpegError).code).toBe('TIMEOUT');
    expect((error as FfmpegError).message).toBe(
      'ffmpeg timed out after 0.3 s and was stopped (the per-video limit: --timeout, timeoutMs)',
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
