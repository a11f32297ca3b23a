/**
 * The pure half of the in-process decoder: from a packet index (pts, dts, keyframe flag, in
 * decode order) and the search targets, which packets to feed the decoder, which of them it
 * may drop, where to flush and jump, and which target each stretch serves. No FFmpeg here:
 * test/ingest/decode-plan.test.ts checks it on packet lists written by hand.
 *
 * Which frame a target gets is the contract of the CLI path (extract.ts's module comment):
 * the first frame, in presentation order, at or after the search target `t` (one nominal
 * period before the planned timestamp), or the last frame when `t` is past the end.
 *
 * Exact mode, every packet with a pts:
 * - The target packet of `t` is the packet of least pts >= t.
 * - It decodes correctly from the last keyframe at or before it in decode order whose pts is
 *   not after its own (a keyframe of an open GOP is followed by leading frames that show
 *   before it and refer to the GOP before; such a frame decodes from the keyframe before).
 * - Each target packet needs the interval [its keyframe, itself]. Intervals are merged when
 *   they overlap or when the next keyframe is at most `reach` packets past the end of the
 *   current one: the decoder then decodes through rather than flushing and jumping
 *   (TorchCodec's rule, with `reach` = has_b_frames + threads - 1; decord's rule is
 *   `reach` = 0, i.e. jump only to another GOP).
 * - Inside a run, target packets are decoded in full; every other packet is fed with
 *   `skip_frame=noref`, so the decoder drops it when no later frame refers to it. Whether a
 *   frame is a reference is not in the packet index: the decoder knows.
 * - A run stops after its last target packet in decode order; the decoder is then drained.
 *
 * Keyframe mode: each target snaps to the keyframe of nearest pts inside its clip's span (of
 * all, when the span holds none), and only keyframes are fed (the long-video mode; the
 * clip's timestamps say which frames came back).
 *
 * Missing pts (AVI with packed B-frames, some raw streams): the packet of a frame cannot be
 * named, so the plan orders by dts where there is one, feeds every packet of the span in
 * full, and the decoder picks frames by their decoded (best-effort) timestamps. Without dts
 * either, the span is decoded whole.
 */

/** One packet of the video stream, in decode (file) order. Times in seconds. */
export interface PacketEntry {
  pts?: number;
  dts?: number;
  key: boolean;
}

/**
 * `target`: decode in full; `noref`: feed with skip_frame=noref (dropped unless referred
 * to); `nokey`: feed with skip_frame=nokey (the decoder sees its timestamps and decodes
 * nothing, as the CLI's keyframe mode feeds it); `drop`: read but never fed.
 */
export type PacketAction = 'target' | 'noref' | 'nokey' | 'drop';

/** One stretch of packets decoded without a flush: feed `first` .. `end - 1`, then drain. */
export interface DecodeRun {
  first: number;
  /** One past the last packet fed. */
  end: number;
  /** Positions in `targets` this run serves, ascending. */
  targets: number[];
  /** The action for packet `first + i`. */
  actions: PacketAction[];
}

export interface DecodePlan {
  runs: DecodeRun[];
  /** Per target: the pts of the frame it will get, or undefined when only decoding can tell. */
  expected: Array<number | undefined>;
  /** True when frames are picked by their decoded timestamps (some packet had no pts). */
  byDecodedTime: boolean;
  /** Packets fed in full, fed with noref, fed with nokey, and never fed (within the runs). */
  counts: Record<PacketAction, number>;
}

export const SEEK_MODES = ['exact', 'keyframe'] as const;
export type SeekMode = (typeof SEEK_MODES)[number];

export interface DecodePlanOptions {
  /** @default 'exact' */
  mode?: SeekMode;
  /**
   * Keyframe mode: per target, the span of its clip; the target takes the keyframe nearest to
   * it inside that span, or the nearest of all when the span holds none. @default undefined (no span)
   */
  spans?: ReadonlyArray<readonly [number, number] | undefined>;
  /** Decode through a gap of at most this many packets rather than flush and jump. @default 0 */
  reach?: number;
}

/** Packets a missing-pts run decodes past its last target, for frames that come out late. */
const NO_PTS_MARGIN = 16;
/** Float tolerance, seconds (timestamps are rationals printed as doubles). */
const EPS = 1e-6;

/** Plans the decode of `targets` (search targets, seconds, any order) from `packets`. */
export function planDecode(
  packets: readonly PacketEntry[],
  targets: readonly number[],
  options: DecodePlanOptions = {},
): DecodePlan {
  const mode = options.mode ?? 'exact';
  const reach = Math.max(0, options.reach ?? 0);
  const n = packets.length;
  const empty: DecodePlan = {
    runs: [],
    expected: targets.map(() => undefined),
    byDecodedTime: false,
    counts: { target: 0, noref: 0, nokey: 0, drop: 0 },
  };
  if (n === 0 || targets.length === 0) return empty;

  if (packets.every((p) => p.pts !== undefined)) {
    const pts = packets.map((p) => p.pts!);
    return mode === 'keyframe'
      ? keyframePlan(packets, pts, targets, options.spans)
      : exactPlan(packets, pts, targets, reach);
  }
  // Missing pts: time each packet by its dts; without that either, decode everything.
  const byDts = packets.every((p) => p.pts !== undefined || p.dts !== undefined);
  if (!byDts)
    return finish(
      [{ first: 0, last: n - 1, serve: targets.map((_, i) => i) }],
      () => 'target',
      targets.map(() => undefined),
      true,
    );
  const time = packets.map((p) => p.pts ?? p.dts!);
  if (mode === 'keyframe') return keyframePlan(packets, time, targets, options.spans, true);
  const intervals = targets.map((t, i) => {
    // The keyframe before the last one at or before t: a packet's dts is not its display
    // time, and the frames that show just after a keyframe may refer to the GOP before it
    // (MPEG-4 Part 2 with packed B-frames shows them a frame late).
    let key = 0;
    let previous = 0;
    for (let k = 0; k < n; k++) {
      if (packets[k].key && time[k] <= t + EPS) {
        previous = key;
        key = k;
      }
    }
    key = previous;
    let last = n - 1;
    for (let k = key; k < n; k++) {
      if (time[k] >= t - EPS) {
        last = k;
        break;
      }
    }
    return { first: key, last: Math.min(n - 1, last + NO_PTS_MARGIN), serve: [i] };
  });
  return finish(
    merge(intervals, reach),
    () => 'target',
    targets.map(() => undefined),
    true,
  );
}

function exactPlan(
  packets: readonly PacketEntry[],
  pts: number[],
  targets: readonly number[],
  reach: number,
): DecodePlan {
  // Presentation order: packet indices by pts (ties: decode order).
  const order = [...pts.keys()].sort((a, b) => pts[a] - pts[b] || a - b);
  // The keyframe each packet decodes from; -1 when none (a stream cut mid-GOP starts with
  // frames the decoder never shows). A stream that flags no keyframe at all decodes from 0.
  const keys = packets.flatMap((p, k) => (p.key ? [k] : []));
  const keyOf = (j: number): number => {
    if (keys.length === 0) return 0;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid] <= j) lo = mid + 1;
      else hi = mid;
    }
    for (let m = lo - 1; m >= 0; m--) if (pts[keys[m]] <= pts[j] + EPS) return keys[m];
    return -1;
  };
  const decodable = order.filter((j) => keyOf(j) >= 0);
  if (decodable.length === 0)
    return finish(
      [],
      () => 'drop',
      targets.map(() => undefined),
      false,
    );
  const expected: number[] = [];
  const byPacket = new Map<number, number[]>();
  targets.forEach((t, i) => {
    let lo = 0;
    let hi = decodable.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pts[decodable[mid]] < t - EPS) lo = mid + 1;
      else hi = mid;
    }
    const j = decodable[Math.min(lo, decodable.length - 1)]; // past the end: the last frame
    expected.push(pts[j]);
    byPacket.set(j, [...(byPacket.get(j) ?? []), i]);
  });
  const intervals = [...byPacket].map(([j, serve]) => ({ first: keyOf(j), last: j, serve }));
  const targetPackets = new Set(byPacket.keys());
  return finish(merge(intervals, reach), (k) => (targetPackets.has(k) ? 'target' : 'noref'), expected, false);
}

function keyframePlan(
  packets: readonly PacketEntry[],
  time: number[],
  targets: readonly number[],
  spans: DecodePlanOptions['spans'],
  byDecodedTime = false,
): DecodePlan {
  const keys = packets.flatMap((p, k) => (p.key ? [k] : []));
  if (keys.length === 0) keys.push(0); // no flagged keyframe: the first packet is the best there is
  const chosen = new Set<number>();
  const nearest = (t: number, among: readonly number[]): number => {
    let best = among[0];
    for (const k of among) if (Math.abs(time[k] - t) < Math.abs(time[best] - t) - EPS) best = k;
    return best;
  };
  const expected = targets.map((t, i) => {
    const span = spans?.[i];
    const inside = span ? keys.filter((k) => time[k] >= span[0] - EPS && time[k] <= span[1] + EPS) : [];
    const best = nearest(t, inside.length > 0 ? inside : keys);
    chosen.add(best);
    return best;
  });
  // One run over the keyframes used: the packets between them are read, never fed.
  let first = Math.min(...chosen);
  let last = Math.max(...chosen);
  if (byDecodedTime) {
    // A packet's dts is not its frame's display time: feed every keyframe from two before
    // the first chosen (the first frames after a flush are timed from too little history)
    // to the one after the last, and every packet between them with skip_frame=nokey, so
    // the decoder times the keyframes as the CLI's does (which feeds every packet so); pick
    // among them by the times they decode with.
    const at = keys.indexOf(first);
    first = keys[Math.max(0, at - 2)];
    last = keys[Math.min(keys.length - 1, keys.indexOf(last) + 1)];
    for (const k of keys) if (k >= first && k <= last) chosen.add(k);
  }
  const runs = [{ first, last, serve: targets.map((_, i) => i) }];
  const skipped: PacketAction = byDecodedTime ? 'nokey' : 'drop';
  return finish(
    runs,
    (k) => (chosen.has(k) ? 'target' : skipped),
    expected.map((k) => (byDecodedTime ? undefined : time[k])),
    byDecodedTime,
  );
}

interface Interval {
  first: number;
  /** Inclusive. */
  last: number;
  serve: number[];
}

/** Merges intervals that overlap or lie at most `reach` packets apart. */
function merge(intervals: Interval[], reach: number): Interval[] {
  const sorted = [...intervals].sort((a, b) => a.first - b.first || a.last - b.last);
  const out: Interval[] = [];
  for (const next of sorted) {
    const current = out.at(-1);
    if (current && next.first - (current.last + 1) <= reach) {
      current.last = Math.max(current.last, next.last);
      current.serve.push(...next.serve);
    } else {
      out.push({ ...next, serve: [...next.serve] });
    }
  }
  return out;
}

function finish(
  intervals: Interval[],
  action: (k: number) => PacketAction,
  expected: Array<number | undefined>,
  byDecodedTime: boolean,
): DecodePlan {
  const counts = { target: 0, noref: 0, nokey: 0, drop: 0 };
  const runs = intervals.map(({ first, last, serve }) => {
    const actions: PacketAction[] = [];
    for (let k = first; k <= last; k++) {
      const a = action(k);
      counts[a]++;
      actions.push(a);
    }
    return { first, end: last + 1, targets: [...new Set(serve)].sort((a, b) => a - b), actions };
  });
  return { runs, expected, byDecodedTime, counts };
}
