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
import { resolveBinaries } from '../../src/ingest/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
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
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=s=32x32:r=1', '-frames:v', '3', '-vf', 'setpts=N*600000/TB', '-vsync', '0', '-c:v', 'libx264', '-g', '1', '-y', path]);
    const info = await probe(path, { decoder });
    expect(info.duration).toBeGreaterThan(12.4 * 86_400);
    const clips = await extractClips(path, planClips(info, { kind: 'uniform', frames: 2 }), { decoder, probe: info, size: 16 });
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
  it.each(['libav', 'cli'] as const)('gives no listener warning with 12 %s probes and decodes at once', async (decoder) => {
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
  });
});
