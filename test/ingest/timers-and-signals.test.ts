/**
 * The decoders' timers and signals: the default timeout fits in a timer whatever the
 * video's length, one signal shared by many decodes gets no listener warning, and a huge
 * frame does not hold the event loop (Ctrl-C returns at once).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { videoTimeoutMs } from '../../src/ingest/extract-plan.js';
import { extractClips } from '../../src/ingest/extract.js';
import { resolveBinaries } from '../../src/ingest/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import { LIMITS } from '../../src/validate.js';
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
