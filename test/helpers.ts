/** Helpers the tests share (one copy of each idea). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished, TestRunner } from 'vitest';
import type { ProbeResult } from '../src/ingest/types.js';

/**
 * A fresh folder under the OS temp folder (`<prefix>XXXXXX`), removed when its scope ends:
 * called inside a test (or its `beforeEach`), after that test; called at the top level of a
 * file or a `describe`, after that file's or suite's tests, which can share what they leave
 * there (an `afterAll` written later in the file runs before the removal). Not from inside
 * `beforeAll`: vitest has collected the suite's hooks by then, so nothing would remove it.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  if (TestRunner.getCurrentTest()) onTestFinished(remove);
  else afterAll(remove);
  return dir;
}

/** The index of the largest value in each row of `probs`, a row-major [rows, classes] array. */
export function argmaxRows(probs: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < probs.length / classes; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
    out.push(best);
  }
  return out;
}

/**
 * A probe as ffprobe gives it for a constant-rate H.264 MP4 (by default 60 s at 25 fps,
 * 64x48), with `over` on top; the frame count follows the duration and `avgFrameRate`, and
 * `nominalFrameRate` follows `avgFrameRate`, unless `over` sets them.
 */
export function probeOf(over: Partial<ProbeResult> = {}): ProbeResult {
  const duration = over.duration ?? 60;
  const fps = over.avgFrameRate ?? 25;
  return {
    path: '/v.mp4',
    size: 1,
    mtimeMs: 0,
    duration,
    startTime: 0,
    avgFrameRate: fps,
    nominalFrameRate: fps,
    frameCount: Math.round(duration * fps),
    frameCountExact: true,
    codedWidth: 64,
    codedHeight: 48,
    rotation: 0,
    width: 64,
    height: 48,
    codec: 'h264',
    pixelFormat: 'yuv420p',
    hasAudio: false,
    formatName: 'mov,mp4,m4a,3gp,3g2,mj2',
    ...over,
  };
}
