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
import { debug } from '../../../log.js';
import { raceAbort } from '../../../validate.js';
import { planDecode, type SeekMode } from '../../decode-plan.js';
import { readInputInfo } from '../../metadata.js';
import { isUrl } from '../../open-policy.js';
import type { Fit, ProbeResult } from '../../types.js';
import { EPS, loadLibav, type DecodeRecord, type DecodeStats, type LibavFrame } from './av.js';
import { Demuxer, servedUpTo, settledUpTo } from './demuxer.js';
import { FrameChooser, FrameDecoder } from './frame-decoder.js';
import { openForDecode, videoStream } from './input.js';

/** Targets at least this far apart on average (seconds) are decoded by two decoders at once. */
const SPLIT_GAP_S = 10;

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

/** A target lies further past its keyframe than a stretch holds: `libav` hands the video to the CLI, which streams. */
export class StretchOverflow extends Error {}

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
