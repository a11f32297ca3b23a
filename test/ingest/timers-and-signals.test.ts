/**
 * The decoders' timers and signals: the default timeout fits in a timer whatever the
 * video's length, one signal shared by many decodes gets no listener warning, and a huge
 * frame does not hold the event loop (Ctrl-C returns at once).
 */
import { execFileSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { videoTimeoutMs } from '../../src/ingest/extract-plan.js';
import { extractClips } from '../../src/ingest/extract.js';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import { loadLibav } from '../../src/ingest/decoders/libav/av.js';
import { RgbConverter } from '../../src/ingest/decoders/libav/converter.js';
import { LIMITS, onAbort } from '../../src/validate.js';
import { COUNTER, fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('framewise-timers-');
const ffmpeg = (args: string[]): void => {
  execFileSync(resolveBinaries().ffmpeg, ['-v', 'error', ...args]);
};

describe('the default timeout', () => {
  it('is 60 s + 2 s per second of video, at most a day (setTimeout fires at once past 2^31-1 ms)', () => {
    expect(videoTimeoutMs(10)).toBe(80_000);
    expect(videoTimeoutMs(13 * 86_400)).toBe(LIMITS.timeoutMs);
    expect(videoTimeoutMs(1e12)).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  it.each(['libav', 'cli'] as const)('lets the %s decoder decode a video 13.9 days long', async (decoder) => {
    const path = join(dir, `long-${decoder}.mkv`);
    // Three frames, 600000 s apart.
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc=s=32x32:r=1',
      '-frames:v',
      '3',
      '-vf',
      'setpts=N*600000/TB',
      '-vsync',
      '0',
      '-c:v',
      'libx264',
      '-g',
      '1',
      '-y',
      path,
    ]);
    const info = await probe(path, { decoder });
    expect(info.duration).toBeGreaterThan(12.4 * 86_400);
    const clips = await extractClips(path, planClips(info, { kind: 'uniform', frames: 2 }), {
      decoder,
      probe: info,
      size: 16,
    });
    expect(clips[0].mask).toEqual([true, true]);
  });
});

describe('onAbort()', () => {
  it('gives a signal one listener for any number of callers, calls each once on abort, and none once removed', () => {
    const controller = new AbortController();
    const calls: number[] = [];
    const offs = Array.from({ length: 100 }, (_, i) => onAbort(controller.signal, () => calls.push(i)));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    offs.slice(0, 98).forEach((off) => off());
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    expect(calls).toEqual([98, 99]);
    offs.forEach((off) => off());
    const other = new AbortController();
    const off = onAbort(other.signal, () => calls.push(-1));
    off();
    expect(getEventListeners(other.signal, 'abort')).toHaveLength(0);
    other.abort();
    expect(calls).toEqual([98, 99]);
  });
});

describe('one signal shared by many decodes (a run at --concurrency 12)', () => {
  it.each(['libav', 'cli'] as const)(
    'gives no listener warning with 12 %s probes and decodes at once',
    async (decoder) => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning);
      };
      process.on('warning', onWarning);
      try {
        const { signal } = new AbortController();
        const path = fixture(COUNTER.path);
        const info = await probe(path, { decoder });
        const plans = planClips(info, { kind: 'fps', fps: 1, frames: 4 });
        const one = async (): Promise<void> => {
          await probe(path, { decoder, signal });
          await extractClips(path, plans, { decoder, probe: info, size: 16, signal });
        };
        await Promise.all(Array.from({ length: 12 }, one));
        await new Promise(setImmediate); // warnings are emitted on the next tick
      } finally {
        process.off('warning', onWarning);
      }
      expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
    },
  );
});

describe('a huge frame', () => {
  // 12000 wide: rows padded in the frame (copied row by row); 8192 wide: rows packed (copied in blocks).
  it.each([
    [12000, 12000],
    [8192, 4320],
  ])(
    'of %dx%d is converted without holding the event loop (Ctrl-C is seen within one slice), to the right pixels',
    async (width, height) => {
      const av = await loadLibav();
      const yuv = new av.Frame();
      yuv.alloc();
      yuv.format = av.AV_PIX_FMT_YUV420P;
      yuv.width = width;
      yuv.height = height;
      expect(yuv.allocBuffer()).toBe(0);
      const [y, u, v] = yuv.data!;
      y.fill(81);
      u.fill(90);
      v.fill(240); // red
      for (let row = 0; row < 64; row++) y.fill(210, row * yuv.linesize[0], row * yuv.linesize[0] + width); // a light band on top
      const converter = new RgbConverter(av);
      try {
        let last = performance.now();
        let worst = 0;
        const timer = setInterval(() => {
          worst = Math.max(worst, performance.now() - last);
          last = performance.now();
        }, 5);
        let checks = 0;
        const rgb = await converter.convert(yuv, () => checks++);
        clearInterval(timer);
        worst = Math.max(worst, performance.now() - last);
        expect(rgb.length).toBe(width * height * 3); // [H, W, 3], packed
        // The copy turns the loop every 32 MiB and checks for an abort (13 times); one synchronous
        // copy held it 640-730 ms on 2 busy shared cores (290 ms on idle ones). The bound is loose
        // for the same reason: other processes may keep the main thread waiting between slices.
        expect(checks).toBeGreaterThan(2);
        expect(worst).toBeLessThan(400);
        const pixel = (x: number, row: number): number[] => [
          ...rgb.subarray((row * width + x) * 3, (row * width + x) * 3 + 3),
        ];
        expect(pixel(0, 0)).toEqual(pixel(width - 1, 63));
        expect(pixel(5, 64)).toEqual(pixel(width - 1, height - 1));
        expect(pixel(5, height - 100)[0]).toBeGreaterThan(200); // red
        expect(pixel(5, height - 100)[1]).toBeLessThan(40);
      } finally {
        converter.free();
        yuv.free();
      }
    },
    30_000,
  );
});
