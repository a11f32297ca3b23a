/**
 * The plain-text renderer (stderr that is not a terminal): a line at most every interval,
 * and none for the final event, which the summary says instead (it was printed twice).
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createRenderer, formatProgress, fractionDone, NOTHING_DONE } from '../../src/cli/progress.js';
import type { ProgressEvent } from '../../src/index.js';

const event = (over: Partial<ProgressEvent>): ProgressEvent => ({
  ...NOTHING_DONE,
  videosTotal: 2,
  etaMs: null,
  final: false,
  ...over,
});

describe('createRenderer (not a TTY)', () => {
  it('throttles lines to the interval, the first one interval in (no `0/N ... ETA --` line at the start), and leaves the final event to the summary', async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (c) => (text += c));
    const renderer = createRenderer({ stream: stream as unknown as NodeJS.WriteStream, intervalMs: 50 });
    renderer.update(event({ elapsedMs: 0 })); // within the first interval: dropped
    await new Promise((r) => setTimeout(r, 60));
    renderer.update(event({ videosDone: 1, elapsedMs: 65_000 }));
    renderer.update(event({ videosDone: 1, elapsedMs: 65_010 })); // within the interval: dropped
    renderer.update(event({ videosDone: 2, final: true, etaMs: 0 }));
    renderer.done();
    const lines = text.trim().split('\n');
    expect(lines).toEqual([
      'framewise: 1/2 videos | 0 clips | 0.00 clips/s | 0.0 frames/s | ETA -- | 1m05s elapsed',
    ]);
  });
});

describe('formatProgress (across machines)', () => {
  it('says which job the output waits on, whose worker stopped answering, and how long until it is handed on', () => {
    const waitingOn = { path: '/v/a.mp4', jobId: 'fw-1', worker: 'framewise@h:7', handedOnInMs: 12_400 };
    expect(formatProgress(event({ queue: { workers: 1, unreachableMs: 0, waitingOn } }))).toMatch(
      / \| 1 worker \| waiting on \/v\/a\.mp4: its worker framewise@h:7 stopped answering; it is handed on within 12s \(--stall-timeout\)$/,
    );
    expect(
      formatProgress(
        event({ queue: { workers: 1, unreachableMs: 0, waitingOn: { ...waitingOn, handedOnInMs: 0 } } }),
      ),
    ).toMatch(/it is handed on at the next stalled check$/);
    expect(formatProgress(event({ queue: { workers: 0, unreachableMs: 0, waitingOn } }))).toMatch(
      /stopped answering; no worker is connected to hand it on$/,
    );
  });
});

describe('formatProgress() and fractionDone()', () => {
  it('count clips out of the plan once every video is planned (one long video moves the bar), else videos', () => {
    const long = event({ videosTotal: 1, videosPlanned: 1, clipsPlanned: 60, clipsDone: 15, etaMs: 66_000 });
    expect(formatProgress(long)).toMatch(/^0\/1 videos \| 15\/60 clips \| .* \| ETA 1m06s \|/);
    expect(fractionDone(long)).toBe(0.25);
    const some = event({ videosTotal: 4, videosDone: 1, videosPlanned: 2, clipsPlanned: 40, clipsDone: 12 });
    expect(formatProgress(some)).toMatch(/^1\/4 videos \| 12 clips \|/);
    expect(fractionDone(some)).toBe(0.25);
  });
});
