import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IngestError } from '../../src/errors.js';
import { extractClips } from '../../src/ingest/extract.js';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import type { FrameClip } from '../../src/ingest/types.js';
import { COUNTER, COUNTER_TS, decodeCounter, fixture, VFR } from '../fixtures.js';
import { tempDir } from '../helpers.js';

/** Frame k of a clip, RGB [S, S, 3]. */
function frameOf(clip: FrameClip, k: number): Uint8Array {
  const [, h, w] = clip.shape;
  return clip.data.subarray(k * h * w * 3, (k + 1) * h * w * 3);
}

function pixel(clip: FrameClip, k: number, x: number, y: number): [number, number, number] {
  const [, , w] = clip.shape;
  const f = frameOf(clip, k);
  const i = (y * w + x) * 3;
  return [f[i], f[i + 1], f[i + 2]];
}

/** Children of this process whose command is `name` (zombies included), from /proc. */
function childProcesses(name: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...
      const m = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat);
      if (m && m[1] === name && Number(m[3]) === process.pid) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/**
 * The counter frame on display at time t: frame n covers [n/fps, (n+1)/fps). Plans are
 * rounded to 1e-9 s, so extraction allows 0.1 ms of slack; so does this.
 */
function shown(t: number): number {
  return Math.floor((t + 1e-4) * COUNTER.fps);
}

const scratch = tempDir('framewise-extract-');

describe('extractClips() on the counter video', () => {
  it.each(['decode', 'seek'] as const)(
    '%s: every decoded frame is the planned one (uniform)',
    async (strategy) => {
      const path = fixture(COUNTER.path);
      const p = await probe(path);
      const plans = planClips(p, { kind: 'uniform', frames: 16 });
      const [clip] = await extractClips(path, plans, { probe: p, strategy, size: 64 });
      expect(clip.shape).toEqual([16, 64, 64, 3]);
      expect(clip.data.length).toBe(16 * 64 * 64 * 3);
      for (let k = 0; k < 16; k++) {
        const n = decodeCounter(frameOf(clip, k), 64, 64);
        // The content is the frame whose time is reported...
        expect(clip.timestamps[k]).toBeCloseTo(n / COUNTER.fps, 5);
        // ...and that is the frame on display at the planned time (centres of 16 parts of 10 s).
        expect(n).toBe(shown(plans[0].timestamps[k]));
        expect(Math.abs(n / COUNTER.fps - plans[0].timestamps[k])).toBeLessThanOrEqual(1 / COUNTER.fps);
      }
      expect(clip.mask.every(Boolean)).toBe(true);
      expect(clip.warnings).toBeUndefined();
    },
  );

  it('fps sampling: several clips, each frame exactly the planned one', async () => {
    const path = fixture(COUNTER.path);
    const plans = planClips(await probe(path), { kind: 'fps', fps: 6, frames: 16 });
    expect(plans).toHaveLength(4); // 60 samples -> 16+16+16+12(padded)
    const clips = await extractClips(path, plans, { size: 48, strategy: 'decode' });
    expect(clips.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    for (const [c, clip] of clips.entries()) {
      for (let k = 0; k < 16; k++) {
        expect(decodeCounter(frameOf(clip, k), 48, 48)).toBe(
          Math.round(plans[c].timestamps[k] * COUNTER.fps),
        );
      }
      expect(clip.mask).toEqual(plans[c].mask);
    }
    expect(clips[3].mask.filter(Boolean)).toHaveLength(12);
  });

  it('a raw H.264 stream (no container, no duration in any header) gives the same frames as its MP4', async () => {
    const raw = join(scratch, 'counter.h264');
    execFileSync(resolveBinaries().ffmpeg, [
      '-v',
      'error',
      '-y',
      '-i',
      fixture(COUNTER.path),
      '-c',
      'copy',
      '-f',
      'h264',
      raw,
    ]);
    const p = await probe(raw);
    expect(p.frameCount).toBe(COUNTER.frames); // counted
    const [clip] = await extractClips(raw, planClips(p, { kind: 'uniform', frames: 8 }), {
      probe: p,
      size: 48,
    });
    const [mp4] = await extractClips(
      fixture(COUNTER.path),
      planClips(await probe(fixture(COUNTER.path)), { kind: 'uniform', frames: 8 }),
      { size: 48 },
    );
    const counters = (c: FrameClip): number[] =>
      Array.from({ length: 8 }, (_, k) => decodeCounter(frameOf(c, k), 48, 48));
    expect(counters(clip)).toEqual(counters(mp4));
    expect(clip.mask.every(Boolean)).toBe(true);
    expect(clip.warnings).toBeUndefined();
  });

  it('decode: a span late in the video (decoding starts near it) still gives the planned frames', async () => {
    const path = fixture(COUNTER.path);
    const plans = planClips(await probe(path), { kind: 'uniform', frames: 6, start: 6, end: 9 });
    const [clip] = await extractClips(path, plans, { strategy: 'decode', size: 32 });
    const expected = plans[0].timestamps.map(shown);
    expect(expected[0]).toBeGreaterThanOrEqual(144);
    expect(Array.from({ length: 6 }, (_, k) => decodeCounter(frameOf(clip, k), 32, 32))).toEqual(expected);
    expect(clip.timestamps).toEqual(expected.map((n) => Math.round((n / COUNTER.fps) * 1e6) / 1e6));
  });

  it('auto: seeks when frames are sparse, decodes when dense, same frames either way', async () => {
    const path = fixture(COUNTER.path);
    const p = await probe(path);
    // 3 frames over 10 s (3.3 s apart) -> seek; 16 frames (0.6 s apart) -> decode.
    for (const frames of [3, 16]) {
      const plans = planClips(p, { kind: 'uniform', frames });
      const [clip] = await extractClips(path, plans, { probe: p, size: 32 });
      expect(Array.from({ length: frames }, (_, k) => decodeCounter(frameOf(clip, k), 32, 32))).toEqual(
        plans[0].timestamps.map(shown),
      );
    }
  });

  it('seek and decode agree frame for frame', async () => {
    const path = fixture(COUNTER.path);
    const plans = planClips(await probe(path), { kind: 'uniform', frames: 5, seed: 3 });
    const [a] = await extractClips(path, plans, { strategy: 'seek', size: 32 });
    const [b] = await extractClips(path, plans, { strategy: 'decode', size: 32 });
    expect(a.timestamps).toEqual(b.timestamps);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
  });
});

describe('extractClips() on MPEG-TS, whose timeline does not start at 0', () => {
  it.each(['decode', 'seek'] as const)(
    '%s: planned times are on the stream timeline, frames exact',
    async (strategy) => {
      const path = fixture(COUNTER_TS.path);
      const p = await probe(path);
      expect(p.startTime).toBeGreaterThan(1);
      const t0 = p.startTime;
      for (const sampling of [
        { kind: 'uniform', frames: 4 },
        { kind: 'uniform', frames: 3, start: t0 + 5, end: t0 + 9 },
      ] as const) {
        const plans = planClips(p, sampling);
        const [clip] = await extractClips(path, plans, { probe: p, strategy, size: 32 });
        const got = plans[0].timestamps.map((_, k) => decodeCounter(frameOf(clip, k), 32, 32));
        expect(got).toEqual(plans[0].timestamps.map((t) => Math.floor((t - t0 + 1e-4) * COUNTER_TS.fps)));
        got.forEach((n, k) => expect(clip.timestamps[k] - t0).toBeCloseTo(n / COUNTER_TS.fps, 4));
      }
    },
  );
});

describe('extractClips() on a variable-frame-rate video', () => {
  it.each(['decode', 'seek'] as const)(
    '%s: returns the real timestamps of the frames it decoded',
    async (strategy) => {
      const path = fixture(VFR.path);
      const plans = planClips(await probe(path), { kind: 'uniform', frames: 12 });
      const [clip] = await extractClips(path, plans, { size: 64, strategy });
      const kept = VFR.frames.map((n) => n / VFR.fps);
      for (let k = 0; k < 12; k++) {
        const n = decodeCounter(frameOf(clip, k), 64, 64);
        expect(VFR.frames).toContain(n);
        expect(clip.timestamps[k]).toBeCloseTo(n / VFR.fps, 5);
        // Within one (local) frame of the plan: the frame on display at the planned time, or,
        // where frames are sparse, the one after it.
        const i = kept.findIndex((t) => Math.abs(t - clip.timestamps[k]) < 1e-6);
        const planned = plans[0].timestamps[k];
        const shown = kept.findLastIndex((t) => t <= planned + 1e-9);
        expect([shown, shown + 1]).toContain(i);
        expect(clip.timestamps[k]).toBeGreaterThan(planned - 1 / VFR.fps);
      }
      // The sparse part (every 6th frame after 2 s) really was hit.
      expect(clip.timestamps.some((t) => t > 2.1)).toBe(true);
      expect(clip.warnings).toBeUndefined();
    },
  );
});

describe('extractClips() geometry', () => {
  it('applies rotation: a portrait display, where the byte count alone would not tell', async () => {
    const path = fixture('edge/rotated.mp4');
    const p = await probe(path);
    // Coded 320x240: left half red, right half blue. Turned clockwise by 90, the left half
    // goes to the top; by 270, to the bottom.
    const top = p.rotation === 90 ? 'red' : 'blue';
    const plans = planClips(p, { kind: 'uniform', frames: 2 });
    const [contain] = await extractClips(path, plans, { probe: p, size: 64, fit: 'contain' });
    expect(contain.shape).toEqual([2, 64, 64, 3]);
    // 240x320 fitted into 64x64 is 48x64: black bars left and right, none at top and bottom.
    expect(pixel(contain, 0, 2, 32)).toEqual([0, 0, 0]);
    expect(pixel(contain, 0, 61, 32)).toEqual([0, 0, 0]);
    const colour = ([r, , b]: number[]): string =>
      r > 200 && b < 60 ? 'red' : b > 200 && r < 60 ? 'blue' : 'other';
    expect(colour(pixel(contain, 0, 32, 4))).toBe(top);
    expect(colour(pixel(contain, 0, 32, 59))).toBe(top === 'red' ? 'blue' : 'red');
    // cover: no bars; the centre crop of the portrait frame keeps the top/bottom split.
    const [cover] = await extractClips(path, plans, { probe: p, size: 64 });
    expect(colour(pixel(cover, 1, 2, 4))).toBe(top);
    expect(colour(pixel(cover, 1, 61, 59))).toBe(top === 'red' ? 'blue' : 'red');
  });

  it('handles odd sizes (321x179) with both fits', async () => {
    const path = fixture('edge/odd-321x179.mp4');
    const plans = planClips(await probe(path), { kind: 'uniform', frames: 3 });
    const [cover] = await extractClips(path, plans, {});
    expect(cover.shape).toEqual([3, 224, 224, 3]);
    const [contain] = await extractClips(path, plans, { fit: 'contain', size: 100 });
    expect(contain.shape).toEqual([3, 100, 100, 3]);
    // Landscape: bars at top and bottom (100x56 content).
    expect(pixel(contain, 0, 50, 2)).toEqual([0, 0, 0]);
    expect(pixel(contain, 0, 50, 50)).not.toEqual([0, 0, 0]);
  });

  it('pads a one-frame video to T frames with a mask', async () => {
    const path = fixture('edge/one-frame.mp4');
    const plans = planClips(await probe(path), { kind: 'uniform', frames: 4 });
    const [clip] = await extractClips(path, plans, { size: 32 });
    expect(clip.mask).toEqual([true, false, false, false]);
    expect(clip.timestamps).toEqual([0, 0, 0, 0]);
    for (let k = 1; k < 4; k++)
      expect(Buffer.from(frameOf(clip, k)).equals(Buffer.from(frameOf(clip, 0)))).toBe(true);
  });

  it('reads a path with spaces and non-ASCII characters', async () => {
    const path = fixture('edge/path with spaces ünïcødé.mp4');
    const clips = await extractClips(path, planClips(await probe(path), { kind: 'uniform', frames: 2 }), {
      size: 16,
    });
    expect(clips[0].shape).toEqual([2, 16, 16, 3]);
  });
});

describe('extractClips() on bad input', () => {
  it('returns the decodable frames of a truncated file, with warnings and masks', async () => {
    const path = fixture('edge/truncated.mp4');
    const p = await probe(path);
    const plans = planClips(p, { kind: 'uniform', frames: 8 });
    const [clip] = await extractClips(path, plans, { probe: p, size: 32, timeoutMs: 30_000 });
    const real = clip.mask.filter(Boolean).length;
    expect(real).toBeGreaterThan(0);
    expect(real).toBeLessThan(8);
    expect(clip.warnings?.some((w) => /could not be decoded/.test(w))).toBe(true);
    // The real frames are the planned ones.
    for (let k = 0; k < real; k++)
      expect(decodeCounter(frameOf(clip, k), 32, 32)).toBe(shown(plans[0].timestamps[k]));
  });

  it.each([
    ['edge/truncated-nomoov.mp4', 'CORRUPT'],
    ['edge/text.mp4', 'NOT_A_VIDEO'],
    ['edge/zero-byte.mp4', 'EMPTY_FILE'],
    ['edge/audio-only.mp4', 'NOT_A_VIDEO'],
    ['edge/unsupported.mp4', 'UNSUPPORTED'],
  ])('%s fails with %s', async (path, code) => {
    const plans = [{ index: 0, start: 0, end: 1, timestamps: [0.5], mask: [true] }];
    await expect(extractClips(fixture(path), plans)).rejects.toSatisfy(
      (e: unknown) => e instanceof IngestError && e.code === code,
    );
  });

  it.each([
    [{ size: 0 }, /Expected a positive integer for `options.size` but received 0/],
    [{ fit: 'stretch' }, /Expected one of 'cover', 'contain' for `options.fit` but received 'stretch'/],
    [{ strategy: 'fast' }, /Expected one of 'auto', 'decode', 'seek' for `options.strategy`/],
    [{ timeoutMs: 0 }, /Expected a positive number for `options.timeoutMs` but received 0/],
    [{ threads: -1 }, /Expected a non-negative integer for `options.threads` but received -1/],
  ])('rejects options %j', async (options, message) => {
    const plans = [{ index: 0, start: 0, end: 1, timestamps: [0.5], mask: [true] }];
    await expect(extractClips(fixture(COUNTER.path), plans, options as never)).rejects.toThrow(message);
  });

  it('rejects plans that are not plans', async () => {
    await expect(extractClips(fixture(COUNTER.path), [])).rejects.toThrow(
      /Expected a non-empty array of ClipPlan for `plans`/,
    );
    await expect(
      extractClips(fixture(COUNTER.path), [
        { index: 0, start: 0, end: 1, timestamps: [0.5, NaN], mask: [true, true] },
      ]),
    ).rejects.toThrow(/`plans\[0\].timestamps\[1\]`/);
  });
});

describe('extractClips() processes', () => {
  /** A FIFO nobody writes to: ffmpeg blocks opening it until it is killed. */
  function stuckInput(marker: string): string {
    const path = join(scratch, `${marker}.mp4`);
    execFileSync('mkfifo', [path]);
    return path;
  }

  it('kills ffmpeg on abort and leaves no process behind', async () => {
    const marker = `framewise-abort-${process.pid}-${Date.now()}`;
    const path = stuckInput(marker);
    const p = await probe(fixture(COUNTER.path));
    const controller = new AbortController();
    const running = extractClips(path, planClips(p, { kind: 'uniform', frames: 4 }), {
      probe: { ...p, path },
      signal: controller.signal,
      decoder: 'cli',
    });
    const settled = running.catch((e: unknown) => e);
    for (let i = 0; i < 200 && processesWith(marker).length === 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(processesWith(marker)).toHaveLength(1);
    const reason = new Error('user abort');
    controller.abort(reason);
    expect(await settled).toBe(reason);
    // Settled only after the child exited and was reaped: nothing left, not even a zombie.
    expect(processesWith(marker)).toEqual([]);
    expect(childProcesses('ffmpeg')).toEqual([]);
  });

  it('kills ffmpeg on timeout with code TIMEOUT', async () => {
    const marker = `framewise-timeout-${process.pid}-${Date.now()}`;
    const path = stuckInput(marker);
    const p = await probe(fixture(COUNTER.path));
    const error = await extractClips(path, planClips(p, { kind: 'uniform', frames: 2 }), {
      probe: { ...p, path },
      timeoutMs: 300,
      decoder: 'cli',
    }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('TIMEOUT');
    expect(processesWith(marker)).toEqual([]);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('early'));
    const plans = [{ index: 0, start: 0, end: 1, timestamps: [0.5], mask: [true] }];
    await expect(extractClips(fixture(COUNTER.path), plans, { signal: controller.signal })).rejects.toThrow(
      'early',
    );
  });

  it('8 extractions at once all come back, with the right frames', async () => {
    const paths = [
      'arrow/forward/zoom-pal.mp4',
      'arrow/reversed/zoom-pal.mp4',
      'arrow/forward/grow-disk-smpte.mp4',
      'segments/seg-08.mp4',
      COUNTER.path,
      COUNTER.path,
      VFR.path,
      'edge/odd-321x179.mp4',
    ];
    const results = await Promise.all(
      paths.map(async (rel) => {
        const p = await probe(fixture(rel));
        return extractClips(fixture(rel), planClips(p, { kind: 'uniform', frames: 8 }), {
          probe: p,
          size: 112,
        });
      }),
    );
    for (const clips of results) expect(clips[0].shape).toEqual([8, 112, 112, 3]);
    // Forward and reversed hold the same frames in the opposite order.
    const [fwd, rev] = [results[0][0], results[1][0]];
    expect(Buffer.from(frameOf(fwd, 0)).equals(Buffer.from(frameOf(fwd, 7)))).toBe(false);
    const diff = (a: Uint8Array, b: Uint8Array): number =>
      a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
    // (uniform sampling of the frame on display is symmetric under reversal)
    expect(diff(frameOf(fwd, 0), frameOf(rev, 7))).toBeLessThan(3);
    expect(diff(frameOf(fwd, 0), frameOf(rev, 0))).toBeGreaterThan(10);
    expect(childProcesses('ffmpeg')).toEqual([]);
  });
});

describe('extractClips() threads', () => {
  it("a single-threaded decode gives the same frames and times as ffmpeg's own choice", async () => {
    const path = fixture(COUNTER.path);
    const p = await probe(path);
    const plans = planClips(p, { kind: 'uniform', frames: 8 });
    const [auto] = await extractClips(path, plans, { probe: p, size: 32, strategy: 'decode' });
    const [one] = await extractClips(path, plans, { probe: p, size: 32, strategy: 'decode', threads: 1 });
    expect(one.timestamps).toEqual(auto.timestamps);
    expect(Buffer.from(one.data).equals(Buffer.from(auto.data))).toBe(true);
  });
});
