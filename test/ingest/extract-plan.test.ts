import { describe, expect, it } from 'vitest';
import {
  ExtractLog,
  landedLate,
  MAX_SEEK_INPUTS,
  MAX_SELECT_TERMS,
  SEEK_MIN_GAP_S,
  fmt,
  pickFrame,
  planExtraction,
} from '../../src/ingest/extract-plan.js';
import type { ClipPlan } from '../../src/ingest/types.js';
import { probeOf } from '../helpers.js';

const clip = (timestamps: number[], index = 0): ClipPlan => ({
  index,
  start: timestamps[0],
  end: timestamps.at(-1)!,
  timestamps,
  mask: timestamps.map(() => true),
});
const arg = (args: string[], flag: string): string => args[args.indexOf(flag) + 1];

describe('planExtraction()', () => {
  it('targets the frame on display: one period before each timestamp, distinct and sorted across clips', () => {
    const plan = planExtraction('file:/v.mp4', [clip([1, 0.5]), clip([0.5, 2], 1)], probeOf(), 'auto', 0);
    expect(plan.period).toBe(1 / 25);
    expect(plan.targets).toEqual([0.5, 1, 2].map((t) => t - 0.04 + 1e-4));
    expect(plan.targetOf(1)).toBeCloseTo(0.9601, 12);
  });

  it('falls back to the average rate when the nominal one is unknown', () => {
    expect(
      planExtraction('i', [clip([1])], probeOf({ nominalFrameRate: 0, avgFrameRate: 10 }), 'auto', 0).period,
    ).toBe(0.1);
  });

  it('decodes dense frames in one pass with an exact select and a trim after the last', () => {
    const plan = planExtraction('file:/v.mp4', [clip([0.2, 0.4, 0.6])], probeOf(), 'auto', 2);
    expect(plan.useSeek).toBe(false);
    expect(plan.args.filter((a) => a === '-i')).toHaveLength(1);
    expect(plan.args).not.toContain('-ss'); // starts at the file's start
    expect(arg(plan.args, '-threads')).toBe('2');
    const vf = arg(plan.args, '-vf');
    expect(vf).toMatch(
      /^trim=end=1\.560100,select='st\(0,if\(isnan\(prev_t\),-1e9,prev_t\)\);gte\(t,0\.160100\)\*lt\(ld\(0\),0\.160100\)\+/,
    );
    expect(vf.endsWith('showinfo,scale=64:48')).toBe(true);
    // trim and select come first, so showinfo is filter 2
    expect([...plan.showinfoBranch]).toEqual([[2, 0]]);
    expect(plan.args.slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
  });

  it('starts a decode a second before a late first frame, counted from the file start time', () => {
    const plan = planExtraction('i', [clip([30, 30.2])], probeOf({ startTime: 1.5 }), 'decode', 0);
    expect(arg(plan.args, '-ss')).toBe(fmt(30 - 0.04 + 1e-4 - 1 - 1.5));
    expect(plan.args.indexOf('-ss')).toBeLessThan(plan.args.indexOf('-i'));
  });

  it('landedLate(): a seek whose keyframe lies past its target (or that found none) decodes again from the start, without -ss', () => {
    const info = probeOf({ startTime: 1.5, formatName: 'mpegts' });
    const plan = planExtraction('i', [clip([30, 30.2])], info, 'decode', 0);
    expect(plan.seeks).toBe(true);
    const log = (first?: number): ExtractLog => {
      const l = new ExtractLog(plan.showinfoBranch, 'i');
      if (first !== undefined)
        l.line(
          `[Parsed_showinfo_2 @ 0x1] n:   0 pts:  1 pts_time:${first} duration:1 pos: 1 fmt:yuv420p sar:1/1 s:64x48 i:P iskey:1`,
        );
      return l;
    };
    expect(landedLate(plan, log(28.5))).toBe(false);
    expect(landedLate(plan, log(30))).toBe(true); // the target is 29.9601
    expect(landedLate(plan, log())).toBe(true);
    const again = planExtraction('i', [clip([30, 30.2])], info, 'decode', 0, 'exact', true);
    expect(again.args).not.toContain('-ss');
    expect(again.seeks).toBe(false);
  });

  it('leaves out the trim when the span reaches the end, and the select over MAX_SELECT_TERMS frames', () => {
    const many = Array.from({ length: MAX_SELECT_TERMS + 1 }, (_, i) => i / 25);
    const plan = planExtraction('i', [clip(many)], probeOf({ duration: 60.5 }), 'decode', 0);
    expect(arg(plan.args, '-vf')).toBe('showinfo,scale=64:48');
    expect([...plan.showinfoBranch]).toEqual([[0, 0]]);
  });

  it(`seeks when frames are at least ${SEEK_MIN_GAP_S} s apart: one input and one chain per frame`, () => {
    const plan = planExtraction('file:/v.mp4', [clip([0, 10, 20])], probeOf(), 'auto', 1);
    expect(plan.useSeek).toBe(true);
    expect(plan.args.filter((a) => a === '-i')).toHaveLength(3);
    // an MP4 seeks 50 ms early; never before the start
    expect(plan.args.filter((_, i) => plan.args[i - 1] === '-ss')).toEqual([
      fmt(0),
      fmt(10 - 0.04 + 1e-4 - 0.05),
      fmt(20 - 0.04 + 1e-4 - 0.05),
    ]);
    const graph = arg(plan.args, '-filter_complex');
    expect(graph.match(/\[\d:v:0\]select=/g)).toHaveLength(3);
    // Each input keeps the keyframe it lands on, then the first frame at or after its target.
    expect(graph).toContain(
      "[1:v:0]select='st(2,key*not(ld(1)));st(1,max(ld(1),key));gt(ld(2)+ld(1)*(gte(t,9.960100)),0)',trim=end_frame=2,showinfo,scale=64:48[v1]",
    );
    expect(graph.endsWith('[v0][v1][v2]concat=n=3:v=1:a=0[out]')).toBe(true);
    expect([...plan.showinfoBranch]).toEqual([
      [2, 0],
      [6, 1],
      [10, 2],
    ]);
  });

  it('seeks a second early on containers that land late (MPEG-TS)', () => {
    const plan = planExtraction('i', [clip([5, 10])], probeOf({ formatName: 'mpegts' }), 'seek', 0);
    expect(arg(plan.args, '-ss')).toBe(fmt(5 - 0.04 + 1e-4 - 1));
  });

  it.each([
    ['one frame', [3], 'auto', false],
    ['frames closer than the gap', [0, 1, 2], 'auto', false],
    [
      `more than ${MAX_SEEK_INPUTS} frames`,
      Array.from({ length: MAX_SEEK_INPUTS + 1 }, (_, i) => i * 3),
      'auto',
      false,
    ],
    ['seek forced on close frames', [0, 0.1], 'seek', true],
    ['decode forced on sparse frames', [0, 30], 'decode', false],
  ] as const)('strategy: %s', (_, timestamps, strategy, seek) => {
    expect(
      planExtraction('i', [clip([...timestamps])], probeOf({ duration: 600 }), strategy, 0).useSeek,
    ).toBe(seek);
  });
});

describe('ExtractLog', () => {
  const showinfo = (idx: number, pts: number, time: string, size = '64x48') =>
    `[Parsed_showinfo_${idx} @ 0x5581] n:   0 pts:  ${pts} pts_time:${time} duration:512 pos: 48 fmt:yuv420p sar:1/1 s:${size} i:P iskey:0`;

  it('reads the pts of each frame with its exact time base, per branch, in stdout order for a seek', () => {
    const log = new ExtractLog(
      new Map([
        [2, 0],
        [6, 1],
      ]),
      'file:/v.mp4',
    );
    log.line('[Parsed_showinfo_6 @ 0x5581] config in time_base: 1/12800, frame_rate: 25/1');
    log.line(showinfo(6, 128512, '10.04'));
    log.line(showinfo(2, 512, '0.04')); // no time base seen: pts_time
    expect(log.framePts({ useSeek: true, targets: [0, 10] })).toEqual([0.04, 128512 * (1 / 12800)]);
    expect(log.framePts({ useSeek: false, targets: [0, 10] })).toEqual([0.04]);
    expect([...log.sizes]).toEqual(['64x48']);
    expect(log.decodeErrors).toEqual([]);
  });

  it('keeps decode errors with the input path hidden, not stream headers, and at most 20', () => {
    const log = new ExtractLog(new Map(), 'file:/secret/v.mp4');
    log.line('[h264 @ 0x1] error while decoding MB 3 4 in file:/secret/v.mp4');
    log.line("Input #0, mov,mp4, from 'file:/secret/v.mp4': corrupt"); // a header line
    for (let i = 0; i < 30; i++) log.line('[h264 @ 0x1] concealing 10 DC errors');
    expect(log.decodeErrors[0]).toBe('[h264 @ 0x1] error while decoding MB 3 4 in <input>');
    expect(log.decodeErrors).toHaveLength(20);
    expect(log.decodeErrors.some((l) => l.startsWith('Input'))).toBe(false);
  });
});

describe('pickFrame()', () => {
  const pts = [0, 0.04, 0.08, 0.12];
  const period = 0.04;

  it('takes the first frame at or after the target', () => {
    expect(pickFrame(pts, 0.05, period, false)).toEqual({ index: 2, exact: true });
    expect(pickFrame(pts, 0.04 + 5e-7, period, false)).toEqual({ index: 1, exact: true }); // rounding slack
    expect(pickFrame(pts, -1, period, false)).toEqual({ index: 0, exact: true });
  });

  it('past the last frame: the last, exact only within two periods of an intact file', () => {
    expect(pickFrame(pts, 0.15, period, false)).toEqual({ index: 3, exact: true });
    expect(pickFrame(pts, 0.3, period, false)).toEqual({ index: 3, exact: false });
    expect(pickFrame(pts, 0.15, period, true)).toEqual({ index: 3, exact: false });
  });

  it('on a damaged file, a frame past a hole wider than four periods is not the one asked for', () => {
    const holed = [0, 0.04, 1.0];
    expect(pickFrame(holed, 0.5, period, true)).toEqual({ index: 1, exact: false });
    expect(pickFrame(holed, 0.9, period, true)).toEqual({ index: 2, exact: true });
    expect(pickFrame(holed, 0.5, period, false)).toEqual({ index: 2, exact: true });
  });
});
