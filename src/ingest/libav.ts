/**
 * The in-process decoder (`decoder: 'libav'`): FFmpeg's libraries through node-av, an
 * optional dependency imported only when this decoder is asked for.
 *
 * probe: one `avformat_open_input` (plus `find_stream_info` where the container leaves the
 * stream's format unknown), read into the shape ffprobe's JSON has and checked by the same
 * code as the CLI path's, so both give the same `ProbeResult` and the same error codes.
 *
 * decode: the video is read in stretches. A stretch starts at the keyframe at or before its
 * first target (a seek, checked and retried earlier when it lands past that keyframe;
 * targets within 2 s of the file's start read from the start) and reads packets, kept in
 * memory, until its first target is settled (a packet at or after it read, and 16 packets
 * past that: no frame that shows earlier can come later in decode order), then on while
 * the next target lies less than two GOPs ahead. A stretch never serves a target it did not
 * reach: one that fills up first (a GOP of thousands of packets) hands the video to the CLI.
 * The pure planner (decode-plan.ts) then says which of those packets to feed, with which
 * `skip_frame`, and where to drain. Only the frames the plan names are converted (swscale
 * to rgb24 with the CLI's bicubic flags, then sharp turns them as the display matrix says and
 * resizes them).
 *
 * The event loop: demuxing is synchronous on files (a packet takes microseconds; the loop
 * yields every 10 ms) and asynchronous on URLs; decoding, conversion and resizing run
 * on libuv's pool. An abort is seen between two packets. Every packet, frame and context has
 * an owner (the Demuxer, the FrameDecoder, the input) that frees it when its `using` scope
 * ends, however the decode ends.
 */
import type * as NodeAv from 'node-av';
import type { CodecContext, FormatContext, Frame, Packet, SoftwareScaleContext, Stream } from 'node-av';
import { FfmpegError, IngestError } from '../errors.js';
import { debug } from '../log.js';
import { onAbort, raceAbort } from '../validate.js';
import {
  planDecode,
  type DecodePlan,
  type DecodeRun,
  type PacketEntry,
  type SeekMode,
} from './decode-plan.js';
import { isUrl } from './ffmpeg.js';
import { isAllowedFormat, openOptions, refusedFormatError, refusedProtocolError } from './open-policy.js';
import {
  classifyOpenFailure,
  fromFfprobe,
  listFrames,
  readHead,
  readInputInfo,
  unlistedStream,
  type FfprobeOutput,
  type FfprobeStream,
} from './probe.js';
import type { Fit, ProbeResult } from './types.js';

type Av = typeof NodeAv;

let loading: Promise<Av> | undefined;

/**
 * Imports node-av once; rejects when it is not installed or its binary does not load, or
 * when `FRAMEWISE_LIBAV` is `off`, `0`, `false` or `no` (any case) it is kept from loading
 * (then `auto` decodes with the CLI).
 */
export function loadLibav(): Promise<Av> {
  const off = ['off', '0', 'false', 'no'].includes(process.env.FRAMEWISE_LIBAV?.trim().toLowerCase() ?? '');
  if (off) return Promise.reject(new Error('turned off by FRAMEWISE_LIBAV'));
  if (!loading) {
    loading = import('node-av').then((av) => {
      // Library code never prints: FFmpeg's own log goes to debuglog.
      av.Log.setLevel(av.AV_LOG_ERROR);
      av.Log.setCallback((_level, message) => debug('libav: %s', message.trim()));
      return av;
    });
    loading.catch(() => undefined);
  }
  return loading;
}

/** What one decode did, for benchmarks and debugging. */
export interface DecodeStats {
  packetsRead: number;
  /** Packets fed in full / fed with skip_frame=noref or nokey. */
  packetsFed: number;
  packetsNoref: number;
  framesDecoded: number;
  framesConverted: number;
  seeks: number;
}

/** A decoded frame chosen for a target: its time, and its picture at the display size, resized. */
export interface LibavFrame {
  pts: number;
  image: Promise<Buffer>;
}

/** Settled targets need this many packets read past the keyframe that settles them. */
const REORDER_PACKETS = 16;
/** A stretch never holds more packets than this (bytes: see MAX_STRETCH_BYTES). */
const MAX_STRETCH_PACKETS = 4096;
const MAX_STRETCH_BYTES = 64 * 2 ** 20;
/** Targets at least this far apart on average (seconds) are decoded by two decoders at once. */
const SPLIT_GAP_S = 10;
/**
 * A converted frame larger than this (beyond 4K) is copied out in slices this large, the
 * event loop turning between them; one this size is copied in one go (tens of ms).
 */
const COPY_SLICE_BYTES = 32 * 2 ** 20;
/** Synchronous reading yields to the event loop after this long. */
const YIELD_AFTER_MS = 10;
const EPS = 1e-6;

interface Opened {
  fmt: FormatContext;
  close(): Promise<void>;
}

/**
 * Opens an input for reading; `interrupt()` on abort or timeout stops a blocking open or
 * read. The caller closes it.
 */
async function openInput(
  av: Av,
  path: string,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  command: string,
): Promise<Opened & { stop(): unknown }> {
  const fmt = new av.FormatContext();
  fmt.allocContext();
  let stopped: unknown;
  const stop = (reason: unknown): void => {
    if (stopped !== undefined) return;
    stopped = reason;
    fmt.interrupt();
  };
  const offAbort = onAbort(signal, () => stop(signal!.reason));
  const timer =
    timeoutMs !== undefined
      ? setTimeout(
          () =>
            stop(
              new FfmpegError({ command, exitCode: null, signal: null, stderr: '', timeoutMs }, 'TIMEOUT'),
            ),
          timeoutMs,
        )
      : undefined;
  timer?.unref?.();
  let opened = false;
  const close = async (): Promise<void> => {
    offAbort();
    if (timer) clearTimeout(timer);
    if (opened) await fmt.closeInput();
    fmt.freeContext();
  };
  try {
    // Only the declared demuxers and protocols (open-policy.ts).
    const options = av.Dictionary.fromObject(openOptions(path));
    let ret: number;
    try {
      ret = await fmt.openInput(isUrl(path) ? path : `file:${path}`, null, options);
    } finally {
      options.free();
    }
    if (stopped !== undefined) throw stopped;
    if (ret === av.AVERROR_EINVAL) {
      // A whitelist refused: a local file's demuxer, or a protocol a URL leads to (FFmpeg's log says which: debuglog).
      if (isUrl(path)) throw refusedProtocolError(path, undefined);
      const refused = await refusedFormat(av, path);
      if (refused) throw refusedFormatError(path, refused);
    }
    if (ret < 0) throw new OpenError(ret, av.FFmpegError.strerror(ret));
    opened = true;
  } catch (error) {
    await close();
    throw error;
  }
  return {
    fmt,
    close,
    stop: () => {
      if (stopped !== undefined) throw stopped;
      return undefined;
    },
  };
}

/**
 * The demuxer FFmpeg picks for a local file by its first bytes, when it is one the whitelist
 * refuses (its open then fails with EINVAL): its name goes into the error.
 */
async function refusedFormat(av: Av, path: string): Promise<string | undefined> {
  const head = await readHead(path, 64 * 1024).catch(() => undefined);
  const name = head && head.length > 0 ? av.InputFormat.probe(Buffer.from(head), path)?.name : undefined;
  return name && !isAllowedFormat(name) ? name : undefined;
}

class OpenError extends Error {
  constructor(
    readonly ret: number,
    message: string,
  ) {
    super(message);
  }
}

function seconds(ts: bigint, tb: { num: number; den: number }, nopts: bigint): number | undefined {
  return ts === nopts || tb.den === 0 ? undefined : (Number(ts) * tb.num) / tb.den;
}

function rational(r: { num: number; den: number }): string {
  return `${r.num}/${r.den}`;
}

/** Clockwise degrees from a display matrix (nine int32, 16.16 fixed point), as ffprobe gives `rotation` (counter-clockwise). */
export function displayMatrixRotation(matrix: Int32Array): number {
  const scale0 = Math.hypot(matrix[0], matrix[3]);
  const scale1 = Math.hypot(matrix[1], matrix[4]);
  if (scale0 === 0 || scale1 === 0) return 0;
  return -(Math.atan2(matrix[1] / scale1, matrix[0] / scale0) * 180) / Math.PI;
}

function sideMatrix(data: Buffer | null): Int32Array | undefined {
  if (!data || data.byteLength < 36) return undefined;
  const copy = new Uint8Array(36);
  copy.set(data.subarray(0, 36));
  return new Int32Array(copy.buffer);
}

/** The streams of an open input, in the shape ffprobe's JSON has. */
function describe(av: Av, fmt: FormatContext): FfprobeOutput {
  const tbSeconds = (ts: bigint, tb: { num: number; den: number }): string | undefined => {
    const s = seconds(ts, tb, av.AV_NOPTS_VALUE);
    return s === undefined ? undefined : s.toFixed(6); // as ffprobe prints them
  };
  const streams: FfprobeStream[] = fmt.streams.map((stream) => {
    const par = stream.codecpar;
    const type =
      par.codecType === av.AVMEDIA_TYPE_VIDEO
        ? 'video'
        : par.codecType === av.AVMEDIA_TYPE_AUDIO
          ? 'audio'
          : par.codecType === av.AVMEDIA_TYPE_SUBTITLE
            ? 'subtitle'
            : 'data';
    const out: FfprobeStream = { codec_type: type, codec_name: av.avGetCodecName(par.codecId) ?? 'unknown' };
    if (type !== 'video') return out;
    const matrix = sideMatrix(par.getCodedSideData(av.AV_PKT_DATA_DISPLAYMATRIX));
    Object.assign(out, {
      width: par.width,
      height: par.height,
      pix_fmt:
        (par.format as number) >= 0
          ? (av.avGetPixFmtName(par.format as NodeAv.AVPixelFormat) ?? undefined)
          : undefined,
      r_frame_rate: rational(stream.rFrameRate),
      avg_frame_rate: rational(stream.avgFrameRate),
      start_time: tbSeconds(stream.startTime, stream.timeBase),
      duration: tbSeconds(stream.duration, stream.timeBase),
      nb_frames: stream.nbFrames > 0n ? String(stream.nbFrames) : undefined,
      disposition: { attached_pic: stream.hasDisposition(av.AV_DISPOSITION_ATTACHED_PIC) ? 1 : 0 },
      side_data_list: matrix ? [{ rotation: displayMatrixRotation(matrix) }] : [],
      codec_tag_string: par.codecTagString ?? undefined,
      time_base: rational(stream.timeBase),
    });
    if (!av.Codec.findDecoder(par.codecId)) out.codec_name = 'none';
    return out;
  });
  const us = { num: 1, den: 1_000_000 };
  return {
    streams,
    format: {
      format_name: fmt.iformat?.name ?? undefined,
      duration: tbSeconds(fmt.duration, us),
      start_time: tbSeconds(fmt.startTime, us),
    },
  };
}

/** The durations (time-base units) of one stream's packets, read to the end: a raw stream's frame list. */
async function packetDurations(
  av: Av,
  fmt: FormatContext,
  index: number,
  signal: AbortSignal | undefined,
): Promise<number[]> {
  const durations: number[] = [];
  const packet = new av.Packet();
  packet.alloc();
  try {
    let lastYield = performance.now();
    while (fmt.readFrameSync(packet) >= 0) {
      if (packet.streamIndex === index) durations.push(Number(packet.duration));
      packet.unref();
      if (performance.now() - lastYield > YIELD_AFTER_MS) {
        await new Promise(setImmediate);
        signal?.throwIfAborted();
        lastYield = performance.now();
      }
    }
    return durations;
  } finally {
    packet.free();
  }
}

/** `probe()` in-process. Arguments are checked by the caller. */
export async function probeLibav(
  path: string,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<ProbeResult> {
  const av = await loadLibav();
  const info = await readInputInfo(path);
  signal?.throwIfAborted();
  let input: Opened & { stop(): unknown };
  try {
    input = await openInput(av, path, signal, timeoutMs, `libav probe ${path}`);
  } catch (error) {
    if (!(error instanceof OpenError)) throw error;
    throw await classifyOpenFailure(path, error.message, error);
  }
  try {
    const ret = await input.fmt.findStreamInfo();
    input.stop();
    if (ret < 0) debug('libav: find_stream_info on %s: %s', path, av.FFmpegError.strerror(ret));
    const output = describe(av, input.fmt);
    const raw = unlistedStream(output);
    if (raw)
      listFrames(path, raw, await packetDurations(av, input.fmt, output.streams!.indexOf(raw), signal));
    return fromFfprobe(path, info, output);
  } finally {
    await input.close();
  }
}

export interface LibavDecodeOptions {
  signal?: AbortSignal;
  timeoutMs: number;
  threads: number;
  seek: SeekMode;
  /** Keyframe mode: per target, its clip's span (see `DecodePlanOptions.spans`). @default undefined */
  spans?: ReadonlyArray<readonly [number, number]>;
  /** Width and height of the resized frames, and how they fit. */
  size: number;
  fit: Fit;
  resize(raw: Buffer, width: number, height: number, rotation: number): Promise<Buffer>;
  onStats?: (stats: DecodeStats) => void;
}

export interface LibavDecodeResult {
  /** The frames chosen, ascending by pts. */
  frames: LibavFrame[];
  decodeErrors: string[];
  /** Set when reading stopped early on an error (not at the end of the file). */
  failure?: string;
}

/** A packet read, kept while its stretch is planned and decoded. */
interface Held {
  entry: PacketEntry;
  packet: Packet | null;
  size: number;
}

type TimeBase = { num: number; den: number };

/** What a decode records as it goes: its counts and its decode errors (the first 20 are returned). */
interface DecodeRecord {
  stats: DecodeStats;
  errors: string[];
}

/**
 * Decodes the frames for `targets` (search targets, ascending) from `path`. An abort rejects
 * at once; the decode itself stops at its next packet and frees what it holds.
 */
export function decodeLibav(
  path: string,
  info: ProbeResult,
  targets: readonly number[],
  options: LibavDecodeOptions,
): Promise<LibavDecodeResult> {
  // Sparse targets (long videos) are independent seeks: two decoders take half each, so
  // they run on two cores.
  const meanGap = targets.length > 1 ? (targets[targets.length - 1] - targets[0]) / (targets.length - 1) : 0;
  const half = targets.length >= 4 && meanGap >= SPLIT_GAP_S ? targets.length >> 1 : targets.length;
  const halves = [
    [0, half],
    [half, targets.length],
  ].filter(([a, b]) => b > a);
  const { spans } = options;
  const parts = halves.map(([a, b]) =>
    decodeStretches(path, info, targets.slice(a, b), { ...options, spans: spans?.slice(a, b) }),
  );
  const work = Promise.all(parts).then((results) => ({
    frames: results.flatMap((r) => r.frames).sort((a, b) => a.pts - b.pts),
    decodeErrors: results.flatMap((r) => r.decodeErrors).slice(0, 20),
    failure: results.find((r) => r.failure)?.failure,
  }));
  return raceAbort(work, options.signal);
}

/** One decoder's work: stretch after stretch until every target is served. */
async function decodeStretches(
  path: string,
  info: ProbeResult,
  targets: readonly number[],
  options: LibavDecodeOptions,
): Promise<LibavDecodeResult> {
  const av = await loadLibav();
  const { signal, seek: mode } = options;
  signal?.throwIfAborted();
  // Never open a FIFO: its open blocks a thread of libuv's pool until a writer comes.
  await readInputInfo(path);
  await using input = await openForDecode(av, path, options.timeoutMs, signal);
  const check = (): void => {
    input.stop();
    signal?.throwIfAborted();
  };
  const record: DecodeRecord = {
    stats: { packetsRead: 0, packetsFed: 0, packetsNoref: 0, framesDecoded: 0, framesConverted: 0, seeks: 0 },
    errors: [],
  };
  const stream = await videoStream(av, path, input.fmt, check);
  using decoder = await FrameDecoder.open(
    av,
    path,
    stream,
    record,
    check,
    options.threads,
    (raw, width, height) => options.resize(raw, width, height, info.rotation),
  );
  using demuxer = new Demuxer(av, input.fmt, stream, info, isUrl(path), record.stats);
  for (let next = 0; next < targets.length; ) {
    check();
    const ended = await demuxer.readStretchFor(targets, next, mode);
    // The targets this stretch settles.
    const entries = demuxer.held.map((h) => h.entry);
    const last = servedUpTo(targets, next, settledUpTo(entries, ended, mode));
    // A stretch full before it reached its target (a GOP of thousands of packets): no frame
    // of this stretch is that target's, so the caller decodes the video with the CLI.
    if (last === next) {
      throw new StretchOverflow(
        `${path}: the frame at ${targets[next].toFixed(6)} s lies more than ${entries.length} packets past its keyframe`,
      );
    }
    const stretchTargets = targets.slice(next, last);
    const plan = planDecode(entries, stretchTargets, {
      mode,
      reach: decoder.reach,
      spans: options.spans?.slice(next, last),
    });
    debug(
      'libav %s: stretch of %d packets, %d targets, %d runs, fed %d + %d noref',
      path,
      entries.length,
      stretchTargets.length,
      plan.runs.length,
      plan.counts.target,
      plan.counts.noref,
    );
    for (const run of plan.runs)
      await decoder.decodeRun(demuxer.held, run, new FrameChooser(plan, run, stretchTargets, mode));
    next = last;
  }
  options.onStats?.(record.stats);
  debug('libav %s: %o', path, record.stats);
  const frames = decoder.frames.sort((a, b) => a.pts - b.pts);
  // Keyframe mode: two stretches may decode the same keyframe; keep it once.
  const distinct =
    mode === 'keyframe'
      ? frames.filter((f, i) => i === 0 || Math.abs(f.pts - frames[i - 1].pts) > EPS)
      : frames;
  return { frames: distinct, decodeErrors: record.errors.slice(0, 20), failure: demuxer.failure };
}

/** `openInput` for a decode: a file libav cannot open is CORRUPT. */
async function openForDecode(
  av: Av,
  path: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Opened & { stop(): unknown } & AsyncDisposable> {
  const input = await openInput(av, path, signal, timeoutMs, `libav decode ${path}`).catch(
    (error: unknown) => {
      if (error instanceof OpenError)
        throw new IngestError('CORRUPT', path, `${path}: libav cannot open it (${error.message})`, {
          cause: error,
        });
      throw error;
    },
  );
  return { ...input, [Symbol.asyncDispose]: input.close };
}

/**
 * The video stream to decode: the first that is not a cover picture. MPEG-TS and raw
 * streams say nothing before a look at the packets (a decoder finds its pixel format itself:
 * an MP4 needs no look).
 */
async function videoStream(av: Av, path: string, fmt: FormatContext, check: () => void): Promise<Stream> {
  const pick = (): Stream | undefined =>
    fmt.streams.find(
      (s) =>
        s.codecpar.codecType === av.AVMEDIA_TYPE_VIDEO && !s.hasDisposition(av.AV_DISPOSITION_ATTACHED_PIC),
    );
  let stream = pick();
  if (!stream || stream.codecpar.width === 0) {
    await fmt.findStreamInfo();
    check();
    stream = pick();
  }
  if (!stream) throw new IngestError('NOT_A_VIDEO', path, `${path}: no video stream`);
  return stream;
}

/**
 * Where the targets from `next` that a stretch settles up to `settled` end. A stretch reads
 * until it settles its first target (or the input ends), so only a full one settles none.
 */
function servedUpTo(targets: readonly number[], next: number, settled: number): number {
  let last = next;
  while (last < targets.length && targets[last] <= settled + EPS) last++;
  return last;
}

/** A target lies further past its keyframe than a stretch holds: `libav` hands the video to the CLI, which streams. */
export class StretchOverflow extends Error {}

/**
 * Reads the video stream's packets in stretches (see the top of this file). It only moves
 * forward, except for a seek back when a seek lands past the target's keyframe.
 */
class Demuxer implements Disposable {
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
 * Which decoded frames one run keeps: those at the times the plan expects or, where packets
 * lack the timestamps to plan by, the first frame at or after each target by decoded time
 * (and the last frame decoded for targets past the last frame).
 */
class FrameChooser {
  private readonly byDecodedTime: boolean;
  private readonly want: number[];
  /** Targets not served yet, ascending (by decoded time only). */
  private readonly pending: number[];
  /** A copy of the last frame decoded and not kept (by decoded time only). */
  private last: Frame | undefined;

  constructor(
    plan: DecodePlan,
    run: DecodeRun,
    stretchTargets: readonly number[],
    private readonly mode: SeekMode,
  ) {
    this.byDecodedTime = plan.byDecodedTime;
    this.want = plan.byDecodedTime ? [] : run.targets.map((i) => plan.expected[i]!);
    this.pending = run.targets.map((i) => stretchTargets[i]).sort((a, b) => a - b);
  }

  /** Whether to keep `frame`, decoded at `pts`. */
  take(pts: number | undefined, frame: Frame): boolean {
    // Keyframe mode feeds the chosen keyframes only: every frame is one of them.
    if (this.mode === 'keyframe') return pts !== undefined;
    if (!this.byDecodedTime) return pts !== undefined && this.want.some((w) => Math.abs(w - pts) < EPS);
    let take = false;
    while (this.pending.length > 0 && pts !== undefined && pts >= this.pending[0] - EPS) {
      this.pending.shift();
      take = true;
    }
    this.last?.free();
    this.last = take ? undefined : (frame.clone() ?? undefined);
    return take;
  }

  /** The frame that serves the targets still pending once the run is drained, if any. */
  leftover(): Frame | undefined {
    return this.byDecodedTime && this.pending.length > 0 ? this.last : undefined;
  }

  free(): void {
    this.last?.free();
    this.last = undefined;
  }
}

/** The video decoder: feeds a stretch's runs as the plan says and converts the frames chosen. */
class FrameDecoder implements Disposable {
  /** The frames chosen, in the order they were decoded. */
  readonly frames: LibavFrame[] = [];
  /** The planner's `reach`: the packets a gap may span and still be decoded through. */
  readonly reach: number;
  private readonly tb: TimeBase;
  private readonly frame: Frame;
  private readonly rgb: RgbConverter;
  private skip: 'default' | 'noref' | 'nokey' = 'default';

  private constructor(
    private readonly av: Av,
    private readonly ctx: CodecContext,
    stream: Stream,
    private readonly record: DecodeRecord,
    private readonly check: () => void,
    private readonly resize: (raw: Buffer, width: number, height: number) => Promise<Buffer>,
  ) {
    this.tb = stream.timeBase;
    // TorchCodec's rule: decode through when the next keyframe is within the decoder's delay.
    this.reach = Math.max(0, ctx.hasBFrames + Math.max(1, ctx.threadCount) - 1);
    this.frame = new av.Frame();
    this.frame.alloc();
    this.rgb = new RgbConverter(av);
  }

  /** Opens `stream`'s decoder with `threads` threads. */
  static async open(
    av: Av,
    path: string,
    stream: Stream,
    record: DecodeRecord,
    check: () => void,
    threads: number,
    resize: FrameDecoder['resize'],
  ): Promise<FrameDecoder> {
    const codec = av.Codec.findDecoder(stream.codecpar.codecId);
    if (!codec)
      throw new IngestError(
        'UNSUPPORTED',
        path,
        `${path}: no decoder for ${av.avGetCodecName(stream.codecpar.codecId) ?? 'this codec'} in libav`,
      );
    const ctx = new av.CodecContext();
    ctx.allocContext3(codec);
    try {
      ctx.parametersToContext(stream.codecpar);
      ctx.pktTimebase = stream.timeBase;
      ctx.threadCount = threads;
      const opened = await ctx.open2(codec);
      if (opened < 0)
        throw new IngestError(
          'UNSUPPORTED',
          path,
          `${path}: libav cannot open the ${codec.name} decoder (${av.FFmpegError.strerror(opened)})`,
        );
    } catch (error) {
      ctx.freeContext();
      throw error;
    }
    return new FrameDecoder(av, ctx, stream, record, check, resize);
  }

  /** Feeds one run of `held` as its actions say, drains the decoder, and converts the frames `chooser` keeps. */
  async decodeRun(held: readonly Held[], run: DecodeRun, chooser: FrameChooser): Promise<void> {
    try {
      for (let k = run.first; k < run.end; k++) {
        const action = run.actions[k - run.first];
        const h = held[k];
        if (action === 'drop' || !h.packet) continue;
        this.check();
        await this.feed(h, action);
        await this.receive(chooser);
      }
      this.setSkip('default');
      await this.ctx.sendPacket(null); // drain
      await this.receive(chooser);
      const leftover = chooser.leftover();
      if (leftover) await this.convert(leftover, this.time(leftover) ?? 0);
    } finally {
      chooser.free();
      this.ctx.flushBuffers();
    }
  }

  private async feed(h: Held, action: 'target' | 'noref' | 'nokey'): Promise<void> {
    const { av, record } = this;
    this.setSkip(action === 'target' ? 'default' : action);
    if (action !== 'target') record.stats.packetsNoref++;
    else record.stats.packetsFed++;
    const ret = await this.ctx.sendPacket(h.packet);
    if (ret < 0 && ret !== av.AVERROR_EAGAIN)
      record.errors.push(
        `packet at ${(h.entry.pts ?? h.entry.dts ?? 0).toFixed(6)} s: ${av.FFmpegError.strerror(ret)}`,
      );
  }

  /** Receives every frame the decoder has ready; `chooser` decides which to keep. */
  private async receive(chooser: FrameChooser): Promise<void> {
    const { av, frame, record } = this;
    for (;;) {
      const ret = await this.ctx.receiveFrame(frame);
      if (ret === av.AVERROR_EAGAIN || ret === av.AVERROR_EOF) return;
      if (ret < 0) {
        record.errors.push(`decode: ${av.FFmpegError.strerror(ret)}`);
        return;
      }
      record.stats.framesDecoded++;
      if (frame.decodeErrorFlags !== 0)
        record.errors.push(
          `frame at ${this.seconds(frame.bestEffortTimestamp)?.toFixed(6)} s decoded with errors`,
        );
      const pts = this.time(frame);
      if (chooser.take(pts, frame)) await this.convert(frame, pts ?? 0);
      frame.unref();
    }
  }

  /** Converts a decoded frame to rgb24 at its coded size, then rotates and resizes it. */
  private async convert(decoded: Frame, pts: number): Promise<void> {
    const raw = await this.rgb.convert(decoded, this.check);
    const image = this.resize(raw, decoded.width, decoded.height);
    image.catch(() => undefined); // awaited by the caller
    this.frames.push({ pts, image });
    this.record.stats.framesConverted++;
  }

  private setSkip(value: 'default' | 'noref' | 'nokey'): void {
    if (value === this.skip) return;
    this.ctx.setOption('skip_frame', value);
    this.skip = value;
  }

  /** A decoded frame's time: its best-effort timestamp, else its pts. */
  private time(decoded: Frame): number | undefined {
    return this.seconds(decoded.bestEffortTimestamp) ?? this.seconds(decoded.pts);
  }

  private seconds(ts: bigint): number | undefined {
    return seconds(ts, this.tb, this.av.AV_NOPTS_VALUE);
  }

  [Symbol.dispose](): void {
    this.frame.free();
    this.rgb.free();
    this.ctx.freeContext();
  }
}

/** swscale to rgb24 at the coded size; its context is made again when the size or pixel format changes. */
export class RgbConverter {
  private readonly rgb: Frame;
  private sws: SoftwareScaleContext | undefined;
  private key = '';

  constructor(private readonly av: Av) {
    this.rgb = new av.Frame();
    this.rgb.alloc();
  }

  /**
   * `decoded` as packed rgb24. swscale runs on libuv's pool; the copy out of the frame runs
   * here, on the main thread, so a large frame is copied in slices with a turn of the event
   * loop between them (`check` then throws on an abort): one copy of a 12000x12000 frame
   * (432 MB) held the loop for 0.3-0.7 s, and Ctrl-C for over 2 s.
   */
  async convert(decoded: Frame, check: () => void): Promise<Buffer> {
    const key = `${decoded.width}x${decoded.height}/${decoded.format}`;
    if (key !== this.key) this.remake(decoded, key);
    await this.sws!.scaleFrame(this.rgb, decoded);
    const { width, height } = decoded;
    const rowBytes = width * 3;
    if (rowBytes * height <= COPY_SLICE_BYTES) return this.rgb.toBuffer();
    const out = Buffer.allocUnsafeSlow(rowBytes * height); // [H, W, 3]
    const plane = this.rgb.data![0]; // a view of the frame's memory, [H, linesize]: valid while this.rgb is
    const stride = this.rgb.linesize[0];
    const rows = Math.max(1, Math.floor(COPY_SLICE_BYTES / rowBytes));
    for (let y = 0; y < height; y += rows) {
      if (y > 0) {
        await new Promise(setImmediate);
        check();
      }
      const end = Math.min(height, y + rows);
      if (stride === rowBytes) plane.copy(out, y * rowBytes, y * stride, end * stride);
      else for (let r = y; r < end; r++) plane.copy(out, r * rowBytes, r * stride, r * stride + rowBytes);
    }
    return out;
  }

  private remake(decoded: Frame, key: string): void {
    const { av, rgb } = this;
    this.sws?.freeContext();
    this.sws = new av.SoftwareScaleContext();
    // The ffmpeg CLI's filter graphs convert with bicubic (its default sws_flags). The flags
    // pick how chroma is upsampled where no unscaled fast path exists (10-bit and other
    // high-depth formats): bilinear left 10-bit frames up to 41/255 from the CLI's.
    this.sws.getContext(
      decoded.width,
      decoded.height,
      decoded.format as NodeAv.AVPixelFormat,
      decoded.width,
      decoded.height,
      av.AV_PIX_FMT_RGB24,
      av.SWS_BICUBIC,
    );
    rgb.unref();
    rgb.format = av.AV_PIX_FMT_RGB24;
    rgb.width = decoded.width;
    rgb.height = decoded.height;
    rgb.allocBuffer();
    this.key = key;
  }

  free(): void {
    this.rgb.free();
    this.sws?.freeContext();
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

function settledUpTo(entries: readonly PacketEntry[], ended: boolean, mode: SeekMode): number {
  if (ended) return Infinity;
  const settled = new Settled(mode);
  for (let k = 0; k < entries.length; k++) settled.add((j) => entries[j], k);
  return settled.upTo;
}
