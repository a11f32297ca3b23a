/**
 * ProgressTracker's counts and ETA, worked out by hand: clips count as they finish, a failed
 * video's clips are taken back out, and the ETA is the time per clip times the clips left,
 * the videos not yet planned counted at the mean plan.
 */
import { describe, expect, it } from 'vitest';
import { ProgressTracker } from '../../src/embedding/progress.js';

function tracker(videos: number): ProgressTracker {
  const t = new ProgressTracker();
  t.select(Array.from({ length: videos }, (_, i) => ({ path: `v${i}.mp4` })));
  return t;
}

describe('ProgressTracker', () => {
  it('counts the clips of a video in progress, with an ETA before any video finishes', () => {
    const t = tracker(1);
    expect(t.snapshot().etaMs).toBeNull();
    const v = t.video();
    t.plan(v, 60);
    for (let i = 0; i < 15; i++) t.clip(v, 16);
    const e = t.snapshot();
    expect(e).toMatchObject({
      videosDone: 0,
      clipsDone: 15,
      framesDone: 240,
      videosPlanned: 1,
      clipsPlanned: 60,
    });
    // 45 clips left at elapsed/15 each: three times the time so far.
    expect(e.etaMs! / e.elapsedMs).toBeCloseTo(3, 5);
    t.succeed({ clips: Array.from({ length: 60 }, () => ({})), frames: 16 }, v);
    expect(t.snapshot(true)).toMatchObject({ videosDone: 1, clipsDone: 60, framesDone: 960, etaMs: 0 });
  });

  it("counts the videos not yet planned at the mean plan, and takes a failed video's clips back out", () => {
    const t = tracker(4);
    const [a, b] = [t.video(), t.video()];
    t.plan(a, 10);
    t.plan(b, 30);
    for (let i = 0; i < 5; i++) t.clip(a, 4);
    // Expected: 40 planned + 2 unplanned x 20 = 80 clips; 5 done, 75 left.
    const e = t.snapshot();
    expect(e.etaMs! / e.elapsedMs).toBeCloseTo(15, 5);
    t.fail('CORRUPT', a);
    expect(t.snapshot()).toMatchObject({
      videosDone: 1,
      failures: 1,
      clipsDone: 0,
      framesDone: 0,
      videosPlanned: 2,
      clipsPlanned: 40,
    });
    // A video from the cache (never planned on its own) counts as planned with its clips.
    t.succeed({ clips: [{}, {}], frames: 4 });
    expect(t.snapshot()).toMatchObject({
      videosDone: 2,
      clipsDone: 2,
      framesDone: 8,
      videosPlanned: 3,
      clipsPlanned: 42,
    });
  });
});
