import { describe, expect, it } from 'vitest';
import { IngestError } from '../../src/errors.js';
import {
  clipCount,
  parseSampling,
  planClips,
  SAMPLERS,
  samplingForms,
  samplingForSpan,
  validateSampling,
  type Sampler,
} from '../../src/ingest/sampling.js';
import { resolveOptions } from '../../src/runners/options.js';
import { positiveInteger } from '../../src/validate.js';
import type { ProbeResult, Sampling } from '../../src/ingest/types.js';
import { probeOf } from '../helpers.js';

/** A probe as ffprobe would give it for a constant-rate video. */
const video = (duration: number, fps: number, startTime = 0): ProbeResult =>
  probeOf({ duration, avgFrameRate: fps, startTime });

describe('planClips() uniform', () => {
  it('places T frames at the centres of T equal parts', () => {
    expect(planClips(video(10, 24), { kind: 'uniform', frames: 4 })).toEqual([
      { index: 0, start: 0, end: 10, timestamps: [1.25, 3.75, 6.25, 8.75], mask: [true, true, true, true] },
    ]);
  });

  it('uses start..end when given, on the stream timeline', () => {
    const [clip] = planClips(video(10, 25), { kind: 'uniform', frames: 5, start: 2, end: 4 });
    expect(clip.timestamps).toEqual([2.2, 2.6, 3, 3.4, 3.8]);
    expect([clip.start, clip.end]).toEqual([2, 4]);
  });

  it('honours a non-zero start time', () => {
    const [clip] = planClips(video(2, 10, 1.5), { kind: 'uniform', frames: 2 });
    expect(clip.timestamps).toEqual([2, 3]);
  });

  it('with a seed, jitters each frame inside its own part, reproducibly', () => {
    const s: Sampling = { kind: 'uniform', frames: 8, seed: 7 };
    const a = planClips(video(8, 30), s)[0].timestamps;
    const b = planClips(video(8, 30), s)[0].timestamps;
    const c = planClips(video(8, 30), { ...s, seed: 8 })[0].timestamps;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    a.forEach((t, k) => {
      expect(t).toBeGreaterThanOrEqual(k);
      expect(t).toBeLessThan(k + 1);
    });
    expect(a).not.toEqual([0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]);
  });

  it('pads a video shorter than T frames by repeating the last real frame, masked', () => {
    // 3 frames at 10 fps: 0, 0.1, 0.2.
    expect(planClips(video(0.3, 10), { kind: 'uniform', frames: 5 })[0]).toEqual({
      index: 0,
      start: 0,
      end: 0.3,
      timestamps: [0, 0.1, 0.2, 0.2, 0.2],
      mask: [true, true, true, false, false],
    });
  });

  it('gives a one-frame video one full clip with one real frame', () => {
    const [clip] = planClips(video(0.1, 10), { kind: 'uniform', frames: 4 });
    expect(clip.timestamps).toEqual([0, 0, 0, 0]);
    expect(clip.mask).toEqual([true, false, false, false]);
  });

  it('takes exactly T frames without padding when the video has exactly T', () => {
    const [clip] = planClips(video(0.4, 10), { kind: 'uniform', frames: 4 });
    expect(clip.timestamps).toEqual([0.05, 0.15, 0.25, 0.35]);
    expect(clip.mask.every(Boolean)).toBe(true);
  });
});

describe('planClips() fps', () => {
  it('cuts frames at N per second into clips of T with stride T', () => {
    // 2.5 s at 2 fps: 0, 0.5, 1, 1.5, 2 (5 frames) -> clips of 2: [0,.5] [1,1.5] [2,(2)].
    expect(planClips(video(2.5, 30), { kind: 'fps', fps: 2, frames: 2 })).toEqual([
      { index: 0, start: 0, end: 1, timestamps: [0, 0.5], mask: [true, true] },
      { index: 1, start: 1, end: 2, timestamps: [1, 1.5], mask: [true, true] },
      { index: 2, start: 2, end: 2.5, timestamps: [2, 2], mask: [true, false] },
    ]);
  });

  it('overlaps clips with a smaller stride and stops once a clip reaches the end', () => {
    const clips = planClips(video(3, 30), { kind: 'fps', fps: 2, frames: 4, stride: 2 });
    expect(clips.map((c) => c.timestamps)).toEqual([
      [0, 0.5, 1, 1.5],
      [1, 1.5, 2, 2.5],
    ]);
  });

  it("samples only a span (a manifest row's), from its start, as many clips as the span holds", () => {
    const clips = planClips(
      video(60, 30),
      samplingForSpan({ kind: 'fps', fps: 2, frames: 2 }, { start: 10, end: 11.5 }),
    );
    expect(clips).toEqual([
      { index: 0, start: 10, end: 11, timestamps: [10, 10.5], mask: [true, true] },
      { index: 1, start: 11, end: 11.5, timestamps: [11, 11], mask: [true, false] },
    ]);
    expect(clipCount(video(60, 30), { kind: 'fps', fps: 2, frames: 2, start: 10, end: 11.5 })).toBe(2);
    expect(clipCount(video(60, 30), { kind: 'fps', fps: 2, frames: 2 })).toBe(60);
  });

  it('pads a video shorter than one clip', () => {
    const clips = planClips(video(1, 30), { kind: 'fps', fps: 2, frames: 4 });
    expect(clips).toEqual([
      { index: 0, start: 0, end: 1, timestamps: [0, 0.5, 0.5, 0.5], mask: [true, true, false, false] },
    ]);
  });
});

describe('planClips() window', () => {
  it('gives one clip per window, frames at the centres of each window', () => {
    const clips = planClips(video(5, 30), { kind: 'window', length: 2, stride: 1.5, frames: 4 });
    expect(clips.map((c) => [c.start, c.end])).toEqual([
      [0, 2],
      [1.5, 3.5],
      [3, 5],
    ]);
    expect(clips[1].timestamps).toEqual([1.75, 2.25, 2.75, 3.25]);
  });

  it('samples only a span: windows from its start, the last clamped to its end', () => {
    const clips = planClips(video(60, 30), {
      kind: 'window',
      length: 2,
      stride: 2,
      frames: 2,
      start: 20,
      end: 23,
    });
    expect(clips.map((c) => [c.start, c.end])).toEqual([
      [20, 22],
      [22, 23],
    ]);
    expect(clips[0].timestamps).toEqual([20.5, 21.5]);
  });

  it('clamps the last window to the end of the video and pads if it is short', () => {
    const clips = planClips(video(1.2, 5), { kind: 'window', length: 1, stride: 1, frames: 3 });
    // Frames at 0, .2, ..., 1.0; second window [1, 1.2) has one frame (1.0).
    expect(clips[1]).toEqual({
      index: 1,
      start: 1,
      end: 1.2,
      timestamps: [1, 1, 1],
      mask: [true, false, false],
    });
  });
});

describe('planClips() validation', () => {
  it.each([
    [{ kind: 'uniform', frames: 0 }, /Expected a positive integer for `sampling.frames` but received 0/],
    [
      { kind: 'bogus', frames: 4 },
      /Expected one of 'uniform', 'fps', 'window' for `sampling.kind` but received 'bogus'/,
    ],
    [{ kind: 'fps', fps: -1, frames: 4 }, /Expected a positive number for `sampling.fps` but received -1/],
    [
      { kind: 'fps', fps: 2, frames: 4, stride: 1.5 },
      /Expected a positive integer for `sampling.stride` but received 1.5/,
    ],
    [{ kind: 'window', length: 0, stride: 1, frames: 4 }, /Expected a positive number for `sampling.length`/],
    [{ kind: 'uniform', frames: 4, start: 3, end: 2 }, /`sampling.start` and `sampling.end` conflict/],
    [{ kind: 'fps', fps: 2, frames: 4, start: -1 }, /Expected a non-negative number for `sampling.start`/],
  ])('rejects %j', (sampling, message) => {
    expect(() => planClips(video(10, 25), sampling as Sampling)).toThrow(TypeError);
    expect(() => planClips(video(10, 25), sampling as Sampling)).toThrow(message);
  });

  it.each(['uniform', 'fps', 'window'])(
    "%s: a span outside the video is that video's OUT_OF_RANGE error, not a bad option",
    (kind) => {
      const sampling = {
        kind,
        frames: 4,
        fps: 2,
        length: 1,
        stride: 1,
        start: 30,
        end: 40,
      } as unknown as Sampling;
      for (const plan of [
        () => planClips(video(10, 25), sampling),
        () => clipCount(video(10, 25), sampling),
      ]) {
        const error = (() => {
          try {
            return plan();
          } catch (e) {
            return e;
          }
        })();
        expect(error).toBeInstanceOf(IngestError);
        expect(error).toMatchObject({
          code: 'OUT_OF_RANGE',
          message: expect.stringMatching(/the span 30-40 s lies outside the video \(0-10 s\)/),
        });
      }
    },
  );

  it.each([
    { kind: 'fps', fps: 6, frames: 16 },
    { kind: 'fps', fps: 2, frames: 4, stride: 1 },
    { kind: 'fps', fps: 1, frames: 2, stride: 5 },
    { kind: 'fps', fps: 1000, frames: 16 },
    { kind: 'window', length: 1, stride: 1, frames: 3 },
    { kind: 'window', length: 4, stride: 3, frames: 2 },
    { kind: 'window', length: 0.5, stride: 2.5, frames: 2 },
    { kind: 'uniform', frames: 8 },
  ] as Sampling[])('clipCount() is the length of the plan, without building it: %j', (sampling) => {
    for (const v of [video(10, 25), video(1.2, 5), video(0.04, 25)])
      expect(clipCount(v, sampling)).toBe(planClips(v, sampling).length);
  });
});

describe('parseSampling()', () => {
  it.each([
    ['uniform', { kind: 'uniform', frames: 8 }],
    ['fps:2', { kind: 'fps', fps: 2, frames: 8 }],
    ['fps:0.5/4', { kind: 'fps', fps: 0.5, frames: 8, stride: 4 }],
    ['window:2/1', { kind: 'window', length: 2, stride: 1, frames: 8 }],
    [' window:2.5/.5 ', { kind: 'window', length: 2.5, stride: 0.5, frames: 8 }],
  ])('parses %s', (text, expected) => {
    expect(parseSampling(text, 8)).toEqual(expected);
  });

  it.each(['', 'fps', 'fps:0', 'fps:x', 'window:2', 'window:0/1', 'uniform:3'])(
    'rejects %j naming the field',
    (text) => {
      expect(() => parseSampling(text, 8, '--sampling')).toThrow(
        /Expected 'uniform', 'fps:<n>\[\/<stride>\]' or 'window:<length>\/<stride>' \(seconds\) for `--sampling`/,
      );
    },
  );
});

describe('SAMPLERS, the one list of samplers', () => {
  /** A sampler written for this test: `every:<k>` takes every k-th frame from the first, one clip. */
  const every: Sampler<{ step: number; frames: number }> = {
    form: 'every:<k>',
    help: 'every k-th frame',
    parse: (args, frames) =>
      args && /^\d+$/.test(args) && Number(args) > 0 ? { step: Number(args), frames } : undefined,
    validate: (value, field, frames) => ({ step: positiveInteger(`${field}.step`, value.step), frames }),
    plan: (tl, s) => {
      const timestamps = Array.from({ length: s.frames }, (_, k) => tl.from + (k * s.step) / tl.fps);
      return [{ index: 0, start: tl.from, end: tl.to, timestamps, mask: timestamps.map(() => true) }];
    },
    count: () => 1,
  };

  it('takes a new sampler from one line: its checks, its CLI form, its plans and the run options read it', () => {
    SAMPLERS.register('every', every as never);
    try {
      const s = parseSampling('every:5', 3, '--sampling');
      expect(s).toEqual({ kind: 'every', step: 5, frames: 3 });
      expect(planClips(video(2, 10), s)[0].timestamps).toEqual([0, 0.5, 1]);
      expect(() => validateSampling({ kind: 'every', step: 0, frames: 3 })).toThrow(
        /Expected a positive integer for `sampling.step` but received 0/,
      );
      expect(() => parseSampling('every:x', 3, '--sampling')).toThrow(
        /'window:<length>\/<stride>' or 'every:<k>' \(seconds\) for `--sampling`/,
      );
      expect(samplingForms()).toBe('uniform | fps:<n>[/<stride>] | window:<length>/<stride> | every:<k>');
      // The run options (what the CLI's flags become) check it as the table says.
      expect(resolveOptions({ sampling: 'every:2', frames: 4 }).sampling).toEqual({
        kind: 'every',
        step: 2,
        frames: 4,
      });
      expect(() => resolveOptions({ sampling: { kind: 'every' } as never })).toThrow(/`sampling.step`/);
      // It takes a manifest row's span with nothing of its own: the timeline is narrowed for it.
      expect(samplingForSpan(s, { start: 1 })).toEqual({ kind: 'every', step: 5, frames: 3, start: 1 });
      expect(planClips(video(2, 10), samplingForSpan(s, { start: 1 }))[0].timestamps).toEqual([1, 1.5, 2]);
    } finally {
      SAMPLERS.unregister('every');
    }
    expect(() => parseSampling('every:5', 3)).toThrow(TypeError);
  });

  it('is the only place the sampler names are written: the kinds are its keys, in order', () => {
    expect(SAMPLERS.names()).toEqual(['uniform', 'fps', 'window']);
    expect(() => validateSampling({ kind: 'every', frames: 2 })).toThrow(
      /Expected one of 'uniform', 'fps', 'window' for `sampling.kind`/,
    );
  });
});
