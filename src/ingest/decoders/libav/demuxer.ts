/**
 * The libav decoder's demuxer: reads the video stream's packets in stretches (see decode.ts),
 * seeking where a stretch starts, and says how far a stretch settles its targets.
 */
import type * as NodeAv from 'node-av';
import type { FormatContext, Packet, Stream } from 'node-av';
import type { PacketEntry, SeekMode } from '../../decode-plan.js';
import type { ProbeResult } from '../../types.js';
import { EPS, seconds, YIELD_AFTER_MS, type Av, type DecodeStats, type TimeBase } from './av.js';

/** Settled targets need this many packets read past the keyframe that settles them. */
const REORDER_PACKETS = 16;
/** A stretch never holds more packets than this (bytes: see MAX_STRETCH_BYTES). */
const MAX_STRETCH_PACKETS = 4096;
const MAX_STRETCH_BYTES = 64 * 2 ** 20;

/** A packet read, kept while its stretch is planned and decoded. */
export interface Held {
  entry: PacketEntry;
  packet: Packet | null;
  size: number;
}

/**
 * Reads the video stream's packets in stretches (see the top of this file). It only moves
 * forward, except for a seek back when a seek lands past the target's keyframe.
 */
export class Demuxer implements Disposable {
  /** The packets of the current stretch. */
  readonly held: Held[] = [];
  /** Set when reading stopped on an error, not at the end of the input. */
  failure: string | undefined;
  private readonly packet: Packet;
  private readonly index: number;
  private readonly tb: TimeBase;
  /** Seconds a stretch starts before its first target: none in MP4 and Matroska (their index makes seeks exact), one elsewhere. */
  private readonly preroll: number;
  /** The demuxer sits at the file's start. */
  private atStart = true;
  /** A packet of the stream came without pts. */
  private noPts = false;
  private lastYield = performance.now();

  constructor(
    private readonly av: Av,
    private readonly fmt: FormatContext,
    stream: Stream,
    private readonly info: ProbeResult,
    private readonly url: boolean,
    private readonly stats: DecodeStats,
  ) {
    this.index = stream.index;
    this.tb = stream.timeBase;
    this.preroll = /mov|mp4|matroska|webm/.test(info.formatName ?? '') ? 0 : 1;
    this.packet = new av.Packet();
    this.packet.alloc();
  }

  /**
   * Reads the stretch that serves `targets[next]` on: from the start for early targets, else
   * a seek, retried earlier when it lands late. True when it reached the end of the input.
   */
  async readStretchFor(targets: readonly number[], next: number, mode: SeekMode): Promise<boolean> {
    const start = this.info.startTime;
    // `start - 1`: the file's start, whatever its first timestamps.
    let from = targets[next] - this.preroll <= start ? start - 1 : targets[next] - this.preroll;
    for (let attempt = 0; ; attempt++) {
      this.freeHeld();
      if (!this.atStart || from - start > 2) {
        await this.seekTo(from);
        this.atStart = false;
      }
      const ended = await this.readStretch(targets, next, mode);
      const keyTime = this.firstKeyTime();
      // Landed after the target's keyframe, or on no keyframe at all (inexact seeks: MPEG-TS
      // lands anywhere, and a long GOP leaves no keyframe near): go back further, and on the
      // last try read from the start.
      if (this.atStart || from <= start - 1 || (keyTime !== undefined && keyTime <= targets[next] + EPS)) {
        this.atStart = false;
        return ended;
      }
      from =
        attempt >= 2 ? start - 1 : Math.max(start - 1, from - 2 * (attempt + 1) * Math.max(1, this.preroll));
    }
  }

  /**
   * Reads one stretch into `held`: until every target up to some keyframe is settled and the
   * next target lies two GOPs or more ahead, or the stretch is full. True at the end of the input.
   */
  private async readStretch(targets: readonly number[], next: number, mode: SeekMode): Promise<boolean> {
    const { held, packet } = this;
    let bytes = 0;
    let kept = 0;
    const keys: number[] = []; // positions of the keyframes in `held`
    const at = (k: number): number | undefined => held[k].entry.pts ?? held[k].entry.dts;
    const settled = new Settled(mode);
    for (;;) {
      if (!(await this.read())) return true;
      const entry = this.entry();
      // Keyframe mode feeds keyframes only: the rest need no copy, except in a stream without
      // pts, whose keyframes are timed by the packets fed between them (skip_frame=nokey).
      if (entry.pts === undefined) this.noPts = true;
      const keep = mode === 'exact' || entry.key || this.noPts;
      held.push({ entry, packet: keep ? packet.clone() : null, size: packet.size });
      if (keep) {
        bytes += packet.size;
        kept++;
      }
      packet.unref();
      if (entry.key) keys.push(held.length - 1);
      settled.add((k) => held[k].entry, held.length - 1);
      const full = kept >= MAX_STRETCH_PACKETS || bytes >= MAX_STRETCH_BYTES;
      if (kept >= 2 * MAX_STRETCH_PACKETS || bytes >= 2 * MAX_STRETCH_BYTES) return false;
      // A stretch ends only once it settles its first target: a target it never reached
      // would take a frame of the wrong time.
      if (targets[next] > settled.upTo + EPS) continue;
      if (full) return false;
      // At a keyframe (not the first packet) with enough packets read past it: stop when the
      // next target lies two GOPs or more past it.
      const lastKey = keys.at(-1);
      if (
        lastKey === undefined ||
        lastKey === 0 ||
        held.length - 1 - lastKey < (mode === 'keyframe' ? 0 : REORDER_PACKETS)
      )
        continue;
      const keyTime = at(lastKey);
      if (keyTime === undefined) continue;
      let upcoming = next;
      while (upcoming < targets.length && targets[upcoming] <= settled.upTo + EPS) upcoming++;
      if (upcoming >= targets.length) return false;
      const prevTime = keys.length >= 2 ? at(keys[keys.length - 2]) : undefined;
      const gop = prevTime !== undefined && keyTime > prevTime ? keyTime - prevTime : 1;
      if (targets[upcoming] - keyTime >= 2 * gop) return false;
    }
  }

  /** The packet just read, as the planner sees it. */
  private entry(): PacketEntry {
    const pts = seconds(this.packet.pts, this.tb, this.av.AV_NOPTS_VALUE);
    const dts = seconds(this.packet.dts, this.tb, this.av.AV_NOPTS_VALUE);
    const entry: PacketEntry = { key: this.packet.isKeyframe };
    if (pts !== undefined) entry.pts = pts;
    if (dts !== undefined) entry.dts = dts;
    return entry;
  }

  private firstKeyTime(): number | undefined {
    const firstKey = this.held.find((h) => h.entry.key);
    return firstKey ? (firstKey.entry.pts ?? firstKey.entry.dts) : undefined;
  }

  /** Reads one packet of the video stream into `packet`; false at the end or on a read error. */
  private async read(): Promise<boolean> {
    const { av, fmt, packet } = this;
    for (;;) {
      const ret = this.url ? await fmt.readFrame(packet) : fmt.readFrameSync(packet);
      if (ret < 0) {
        if (ret !== av.AVERROR_EOF) this.failure = `reading stopped: ${av.FFmpegError.strerror(ret)}`;
        return false;
      }
      this.stats.packetsRead++;
      if (performance.now() - this.lastYield > YIELD_AFTER_MS) {
        await new Promise(setImmediate);
        this.lastYield = performance.now();
      }
      if (packet.streamIndex === this.index) return true;
      packet.unref();
    }
  }

  /** Seeks to the keyframe at or before `t` seconds (the file's start when t is before it). */
  private async seekTo(t: number): Promise<void> {
    const { av, fmt, index, tb } = this;
    const ts = BigInt(Math.floor((t * tb.den) / tb.num));
    let ret = await fmt.seekFrame(index, ts, av.AVSEEK_FLAG_BACKWARD);
    if (ret < 0)
      ret = await fmt.seekFrame(
        index,
        ts,
        (av.AVSEEK_FLAG_BACKWARD | av.AVSEEK_FLAG_ANY) as NodeAv.AVSeekFlag,
      );
    if (ret < 0) await fmt.seekFrame(-1, 0n, av.AVSEEK_FLAG_BYTE);
    this.stats.seeks++;
  }

  private freeHeld(): void {
    for (const h of this.held) h.packet?.free();
    this.held.length = 0;
  }

  [Symbol.dispose](): void {
    this.freeHeld();
    this.packet.free();
  }
}

/**
 * How far a stretch settles targets: every target at or before `upTo` has its frame in the
 * stretch. Exact mode: the latest time of a packet (from the first keyframe on) with
 * `REORDER_PACKETS` read past it; a frame that shows before it cannot come later in decode
 * order than the decoder's reorder depth allows (16 frames at most). Keyframe mode: the last
 * keyframe (not the first packet), the nearest one after the target.
 */
class Settled {
  upTo = -Infinity;
  private firstKey = -1;

  constructor(private readonly mode: SeekMode) {}

  /** Takes in packet `k` (`entry(k)`), the last one read. */
  add(entry: (k: number) => PacketEntry, k: number): void {
    const time = (e: PacketEntry): number => e.pts ?? e.dts ?? -Infinity;
    if (this.firstKey < 0 && entry(k).key) this.firstKey = k;
    if (this.mode === 'keyframe') {
      if (k > 0 && entry(k).key) this.upTo = Math.max(this.upTo, time(entry(k)));
      return;
    }
    const done = k - REORDER_PACKETS;
    if (this.firstKey >= 0 && done >= this.firstKey) this.upTo = Math.max(this.upTo, time(entry(done)));
  }
}

export function settledUpTo(entries: readonly PacketEntry[], ended: boolean, mode: SeekMode): number {
  if (ended) return Infinity;
  const settled = new Settled(mode);
  for (let k = 0; k < entries.length; k++) settled.add((j) => entries[j], k);
  return settled.upTo;
}

/**
 * Where the targets from `next` that a stretch settles up to `settled` end. A stretch reads
 * until it settles its first target (or the input ends), so only a full one settles none.
 */
export function servedUpTo(targets: readonly number[], next: number, settled: number): number {
  let last = next;
  while (last < targets.length && targets[last] <= settled + EPS) last++;
  return last;
}
