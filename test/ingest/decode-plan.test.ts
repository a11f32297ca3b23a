import { describe, expect, it } from 'vitest';
import { planDecode, type PacketEntry } from '../../src/ingest/decode-plan.js';

/**
 * Packets written as "type+pts" in decode order, times in frames (1 s each) unless a test
 * scales them: `I0` a keyframe at pts 0, `P3`, `B1`. `dts` counts up from the first.
 */
function packets(text: string, scale = 1, offset = 0): PacketEntry[] {
  return text
    .trim()
    .split(/\s+/)
    .map((word, i) => ({
      key: word[0] === 'I',
      pts: offset + Number(word.slice(1)) * scale,
      dts: offset + (i - 2) * scale,
    }));
}
/** The packets of a run as "action:type+pts", to read a plan at a glance. */
function show(_list: PacketEntry[], text: string, run: { first: number; actions: string[] }): string[] {
  const words = text.trim().split(/\s+/);
  return run.actions.map((a, i) => `${a}:${words[run.first + i]}`);
}

// Closed GOPs of 9 frames with two B-frames between references (x264-like), in decode order.
const CLOSED =
  'I0 P3 B1 B2 P6 B4 B5 P8 B7  I9 P12 B10 B11 P15 B13 B14 P17 B16  I18 P21 B19 B20 P24 B22 B23 P26 B25';

describe('planDecode(): exact', () => {
  it('decodes from the keyframe to the target packet; the rest of the run is fed noref', () => {
    const list = packets(CLOSED);
    const plan = planDecode(list, [4.5]);
    expect(plan.expected).toEqual([5]);
    expect(plan.runs).toHaveLength(1);
    expect(show(list, CLOSED, plan.runs[0])).toEqual([
      'noref:I0',
      'noref:P3',
      'noref:B1',
      'noref:B2',
      'noref:P6',
      'noref:B4',
      'target:B5',
    ]);
    expect(plan.runs[0].targets).toEqual([0]);
    expect(plan.counts).toEqual({ target: 1, noref: 6, nokey: 0, drop: 0 });
    expect(plan.byDecodedTime).toBe(false);
  });

  it('serves several targets inside one GOP with one run, and a target asked twice once', () => {
    const list = packets(CLOSED);
    const plan = planDecode(list, [0.5, 3, 0.7, 1.2]);
    expect(plan.expected).toEqual([1, 3, 1, 2]);
    expect(plan.runs).toHaveLength(1);
    expect(show(list, CLOSED, plan.runs[0])).toEqual(['noref:I0', 'target:P3', 'target:B1', 'target:B2']);
    expect(plan.runs[0].targets).toEqual([0, 1, 2, 3]);
  });

  it('jumps to another GOP (reach 0) and decodes through when its keyframe is within reach', () => {
    const list = packets(CLOSED);
    const apart = planDecode(list, [1, 19.5]);
    expect(apart.expected).toEqual([1, 20]);
    expect(apart.runs.map((r) => [r.first, r.end])).toEqual([
      [0, 3],
      [18, 22],
    ]);
    // Next keyframe (packet 18) lies 15 packets past the first run's end (3).
    expect(planDecode(list, [1, 19.5], { reach: 14 }).runs).toHaveLength(2);
    const through = planDecode(list, [1, 19.5], { reach: 15 });
    expect(through.runs.map((r) => [r.first, r.end])).toEqual([[0, 22]]);
    expect(through.runs[0].actions.filter((a) => a === 'target')).toHaveLength(2);
    // A target in the same GOP as the previous one never jumps, whatever the reach.
    expect(planDecode(list, [1, 7]).runs.map((r) => [r.first, r.end])).toEqual([[0, 9]]);
  });

  it("decodes an open GOP's leading frames from the keyframe before (they show before their keyframe)", () => {
    // I9 comes before B7 and B8 in decode order but shows after them; they refer to P6 and I9.
    const open = 'I0 P3 B1 B2 P6 B4 B5 I9 B7 B8 P12 B10 B11';
    const list = packets(open);
    const plan = planDecode(list, [6.5]);
    expect(plan.expected).toEqual([7]);
    expect(show(list, open, plan.runs[0])).toEqual([
      'noref:I0',
      'noref:P3',
      'noref:B1',
      'noref:B2',
      'noref:P6',
      'noref:B4',
      'noref:B5',
      'noref:I9',
      'target:B7',
    ]);
    // The keyframe itself and frames after it start from it.
    expect(planDecode(list, [10]).runs.map((r) => [r.first, r.end])).toEqual([[7, 12]]);
  });

  it('follows a variable frame rate: the first frame at or after the target, whatever the gaps', () => {
    const list: PacketEntry[] = [0, 0.04, 0.05, 0.2, 0.21, 1, 1.5, 1.52].map((pts, i) => ({
      pts,
      dts: pts,
      key: i === 0 || i === 5,
    }));
    const plan = planDecode(list, [0.1, 0.9, 1.01]);
    expect(plan.expected).toEqual([0.2, 1, 1.5]);
    expect(plan.runs.map((r) => [r.first, r.end])).toEqual([
      [0, 4],
      [5, 7],
    ]);
  });

  it('handles a negative start pts (an edit list before 0)', () => {
    // 30 fps with B-frames: the first two frames sit before 0 and are cut by the edit list.
    const text = 'I-2 P1 B-1 B0 P4 B2 B3';
    const list = packets(text, 1 / 30);
    const period = 1 / 30;
    const plan = planDecode(list, [0 - period + 1e-4, 2 / 30 - period + 1e-4]);
    expect(plan.expected.map((t) => Math.round(t! * 30))).toEqual([0, 2]);
    expect(show(list, text, plan.runs[0])).toEqual([
      'noref:I-2',
      'noref:P1',
      'noref:B-1',
      'target:B0',
      'noref:P4',
      'target:B2',
    ]);
  });

  it('MPEG-TS: a 1.4 s start offset, a stream cut mid-GOP and non-IDR keyframes', () => {
    // 25 fps on a 90 kHz clock starting at 1.4 s; the capture starts after a GOP's keyframe,
    // so the first frames cannot be decoded and are never chosen.
    const text = 'P2 B0 B1 P5 B3 B4 I8 B6 B7 P11 B9 B10 I14 B12 B13 P17 B15 B16';
    const list = packets(text, 0.04, 1.4);
    const plan = planDecode(list, [1.39, 1.4 + 0.04 * 9.5, 1.4 + 0.04 * 15]);
    // B6 and B7 lead I8 but refer to a GOP that was cut off: the first frame shown is I8's.
    expect(plan.expected.map((t) => Math.round((t! - 1.4) / 0.04))).toEqual([8, 10, 15]);
    // The next keyframe follows the first target's packet at once: one run, no jump.
    expect(plan.runs.map((r) => show(list, text, r))).toEqual([
      [
        'target:I8',
        'noref:B6',
        'noref:B7',
        'noref:P11',
        'noref:B9',
        'target:B10',
        'noref:I14',
        'noref:B12',
        'noref:B13',
        'noref:P17',
        'target:B15',
      ],
    ]);
  });

  it('gives the last frame shown to a target past the end, even when it is not the last packet', () => {
    const text = 'I0 P3 B1 B2';
    expect(planDecode(packets(text), [50]).expected).toEqual([3]);
    expect(planDecode(packets(text), [50]).runs[0].end).toBe(2);
  });

  it('decodes from the first packet when no packet is flagged a keyframe', () => {
    const list = packets('P0 P1 P2 P3').map((p) => ({ ...p, key: false }));
    const plan = planDecode(list, [2]);
    expect(plan.expected).toEqual([2]);
    expect(plan.runs.map((r) => [r.first, r.end])).toEqual([[0, 3]]);
  });

  it('plans nothing for no packets or no targets', () => {
    expect(planDecode([], [1]).runs).toEqual([]);
    expect(planDecode(packets('I0 P1'), []).runs).toEqual([]);
  });
});

describe('planDecode(): missing pts', () => {
  it('times packets by dts, feeds every packet in full and leaves the picking to the decoded timestamps', () => {
    // AVI with packed B-frames: most packets carry no pts, and placeholders stand for frames
    // packed into the packet before. dts counts frames.
    const list: PacketEntry[] = Array.from({ length: 60 }, (_, i) => ({
      dts: i / 25,
      key: i % 25 === 0,
      ...(i % 25 === 0 ? { pts: i / 25 } : {}),
    }));
    const plan = planDecode(list, [1.1, 1.3]);
    expect(plan.byDecodedTime).toBe(true);
    expect(plan.expected).toEqual([undefined, undefined]);
    // From the keyframe before the one at 1.0 s (packet 0: a packed frame right after a
    // keyframe may refer to the GOP before) to the packet at 1.32 s (33) plus a margin of 16.
    expect(plan.runs.map((r) => [r.first, r.end])).toEqual([[0, 50]]);
    expect(plan.counts).toEqual({ target: 50, noref: 0, nokey: 0, drop: 0 });
  });

  it('decodes everything when packets have neither pts nor dts', () => {
    const list: PacketEntry[] = [{ key: true }, { key: false }, { key: false }];
    const plan = planDecode(list, [5]);
    expect(plan.runs.map((r) => [r.first, r.end])).toEqual([[0, 3]]);
    expect(plan.byDecodedTime).toBe(true);
  });
});

describe('planDecode(): keyframe', () => {
  it('snaps each target to the keyframe of nearest pts and feeds keyframes only', () => {
    const list = packets(CLOSED);
    const plan = planDecode(list, [4, 5, 13.4, 100, -3], { mode: 'keyframe' });
    expect(plan.expected).toEqual([0, 9, 9, 18, 0]);
    expect(plan.runs).toHaveLength(1);
    const fed = plan.runs[0].actions.flatMap((a, i) =>
      a === 'drop' ? [] : [`${a}:${CLOSED.split(/\s+/)[plan.runs[0].first + i]}`],
    );
    expect(fed).toEqual(['target:I0', 'target:I9', 'target:I18']);
    expect(plan.counts).toEqual({ target: 3, noref: 0, nokey: 0, drop: 16 });
  });

  it("takes the nearest keyframe inside the target's span, and the nearest of all when the span holds none", () => {
    const list = packets(CLOSED);
    // 8 is nearer to 9, but the span [0, 8] ends before it; [10, 17] holds no keyframe.
    const plan = planDecode(list, [8, 8, 12], {
      mode: 'keyframe',
      spans: [
        [0, 8],
        [0, 20],
        [10, 17],
      ],
    });
    expect(plan.expected).toEqual([0, 9, 9]);
  });
});
