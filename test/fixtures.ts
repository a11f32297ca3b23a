/**
 * Where the generated fixture videos are, and helpers to read the special ones. The set is
 * made by scripts/make-samples.mjs (run by test/global-setup.ts); see that script for the
 * layout: arrow/, segments/, edge/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveBinaries } from '../src/ingest/decoders/cli/ffmpeg.js';

/** `$FRAMEWISE_FIXTURES`, else `<os.tmpdir()>/framewise-fixtures-v1`. */
export function fixturesDir(): string {
  return process.env.FRAMEWISE_FIXTURES || join(tmpdir(), 'framewise-fixtures-v1');
}

/** Absolute path of a fixture, e.g. `fixture('edge/counter.mp4')`. */
export function fixture(relPath: string): string {
  return join(fixturesDir(), relPath);
}

/** Makes `folder` with links to `n` of the arrow/forward scenes under their own names: a folder of distinct videos. */
export function linkScenes(folder: string, n: number): void {
  mkdirSync(folder);
  for (const name of readdirSync(fixture('arrow/forward')).slice(0, n))
    symlinkSync(fixture(`arrow/forward/${name}`), join(folder, name));
}

/** `edge/counter.mp4`: 160x120, 24 fps, 10 s (240 frames); frame n shows n in binary. */
export const COUNTER = {
  path: 'edge/counter.mp4',
  width: 160,
  height: 120,
  fps: 24,
  seconds: 10,
  frames: 240,
  bits: 8,
} as const;

/** `edge/counter.ts`: the counter frames in MPEG-TS; its timeline starts at `startTime` > 0. */
export const COUNTER_TS = { path: 'edge/counter.ts', fps: 24 } as const;

/**
 * `edge/vfr.mp4`: a 30 fps counter keeping every 3rd frame in [0, 1) s, every frame in
 * [1, 2) s and every 6th frame from 2 s on; each kept frame n is at n/30 s.
 */
export const VFR = {
  path: 'edge/vfr.mp4',
  fps: 30,
  /** Source frame numbers that were kept, in order. */
  frames: [
    ...Array.from({ length: 10 }, (_, i) => i * 3),
    ...Array.from({ length: 30 }, (_, i) => 30 + i),
    ...Array.from({ length: 5 }, (_, i) => 60 + i * 6),
  ],
} as const;

/** The arrow-of-time scenes, by split (manifests: arrow/train.csv, arrow/test.csv). */
export const ARROW = {
  width: 160,
  height: 120,
  fps: 12,
  frames: 36,
  labels: ['forward', 'reversed'],
} as const;

/** The labels of segments/*.mp4 (10 fps, every boundary on a frame). */
export const SEGMENT_LABELS = ['bars', 'fractal', 'noise'] as const;

/**
 * Reads the frame number a counter frame shows. `frame` is RGB [H, W, 3]; the bands are
 * horizontal, so any horizontal crop or resize keeps them. Band b (from the top) is bit b.
 */
export function decodeCounter(frame: Uint8Array, width: number, height: number, bits = 8): number {
  let n = 0;
  for (let b = 0; b < bits; b++) {
    // Sample the middle row of the band, across the middle half of the width.
    const y = Math.floor(((b + 0.5) * height) / bits);
    let sum = 0;
    let count = 0;
    for (let x = Math.floor(width / 4); x < Math.floor((3 * width) / 4); x++) {
      sum += frame[(y * width + x) * 3 + 1]; // green ~ luma for grey pixels
      count++;
    }
    if (sum / count > 128) n |= 1 << b;
  }
  return n;
}

/** Makes `path`: a 4-bit `bgr4` rawvideo in NUT, which decodes but which swscale cannot convert to RGB. */
export function makeBgr4(path: string): string {
  const args = ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-t', '1'];
  execFileSync(resolveBinaries().ffmpeg, [...args, '-pix_fmt', 'bgr4', '-c:v', 'rawvideo', '-y', path]);
  return path;
}
