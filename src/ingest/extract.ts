/**
 * extractClips(): decodes the planned frames of one video with one ffmpeg process and
 * returns them resized, as `FrameClip`s.
 *
 * Which frame a planned timestamp `ts` gets: the frame on display at `ts`, i.e. the last
 * frame whose presentation time is <= ts. It is found as the first frame at or after
 * `ts - 1/nominal fps` (+0.1 ms against rounding), which is exactly that frame on a
 * constant-rate video and at most one frame away on a variable-rate one. This rule makes a
 * reversed video give exactly the reversed frames under `uniform` sampling.
 * `FrameClip.timestamps` holds the real times of the frames chosen (from ffmpeg's
 * `showinfo`), not the planned ones.
 *
 * Two ways to get them, both one ffmpeg process whose stdout carries raw rgb24 frames, cut
 * at exactly width x height x 3 bytes (no temporary files):
 * - `decode`: one pass over the span the plan covers, a `select` filter keeping only the
 *   frames wanted. Best when the frames are dense (short clips, fps and window sampling).
 * - `seek`: one input per frame, each opened with an accurate `-ss`, so ffmpeg decodes only
 *   from the keyframe before each frame. Best for sparse frames in long videos.
 * After a seek nothing decoded before the first keyframe is kept (MPEG-TS lands anywhere,
 * and what precedes a keyframe there is broken); when that keyframe lies past a target, the
 * seek landed late and the video is decoded again from its start (`landedLate`).
 * `auto` seeks when the planned frames are on average at least `SEEK_MIN_GAP_S` seconds
 * apart, and decodes otherwise. Measured by scripts/bench-ingest.mjs (640x360 30 fps H.264,
 * x264's default 250-frame keyframe interval, 2 shared cores): one seek cost 0.25 s, as much
 * as decoding 1.9 s of video; on a 10 s clip, 16 seeks took 4.5 s against 1.2 s for one
 * decode pass. The threshold sits a little above the break-even to allow for longer
 * keyframe intervals.
 *
 * Resizing is sharp, raw in and raw out: `cover` scales to fill size x size and crops the
 * centre; `contain` scales to fit inside and pads with black. Rotation: ffmpeg turns the
 * picture as its metadata says, so frames arrive at the display size from `probe()`
 * (width x height after rotation); the size `showinfo` reports is checked against it.
 *
 * A damaged file: the frames that decode are returned; a planned frame that could not be
 * decoded is replaced by the nearest decoded one (its mask set to false) and the clip gets a
 * warning. When nothing decodes, the error is `CORRUPT`.
 */
import {
  checkSignal,
  invalid,
  isPlainObject,
  LIMITS,
  nonEmptyString,
  nonNegativeInteger,
  oneOf,
  positiveInteger,
  positiveNumber,
} from '../validate.js';
import type { SeekMode } from './decode-plan.js';
import {
  decoderFor,
  decoderRequests,
  isDecoder,
  type DecoderRequest,
  type VideoDecoder,
} from './decoders.js';
import type { ExtractStrategy } from './extract-plan.js';
import { FIT_NAMES, type ClipPlan, type Fit, type FrameClip, type ProbeResult } from './types.js';

export { MAX_SEEK_INPUTS, SEEK_MIN_GAP_S } from './extract-plan.js';

export interface ExtractOptions {
  /** Output frames are size x size pixels. @default 224 */
  size?: number;
  /** `cover`: fill and centre-crop; `contain`: fit inside and pad with black. @default 'cover' */
  fit?: Fit;
  signal?: AbortSignal;
  /** Kill ffmpeg after this many milliseconds (error code `TIMEOUT`). @default 60000 + 2000 per second of video, at most a day */
  timeoutMs?: number;
  /** The video's probe, when the caller already has it (saves one ffprobe). @default undefined (probe here) */
  probe?: ProbeResult;
  /** `decode` the span once, `seek` to each frame, or choose by the rule above. @default 'auto' */
  strategy?: ExtractStrategy;
  /**
   * ffmpeg decoding threads for this process; 0 lets ffmpeg choose (one per core). When
   * several decodes run beside the backbone on few cores, fewer threads waste less CPU.
   * @default 0
   */
  threads?: number;
  /**
   * `libav` decodes in-process, `cli` runs ffmpeg, `auto` takes libav when it loads; or a decoder
   * already resolved (`createDecoder()`, or one decoding in worker threads: `pooledDecoder()`). @default 'auto'
   */
  decoder?: DecoderRequest | VideoDecoder;
  /**
   * `exact`: the frame on display at each planned timestamp. `keyframe`: the keyframe nearest
   * to it, and only keyframes are decoded (fast on long videos; `timestamps` say which
   * frames came back). @default 'exact'
   */
  seek?: SeekMode;
}

/** Extraction options after validation, as the decoders receive them. */
export interface ResolvedExtractOptions {
  size: number;
  fit: Fit;
  strategy: ExtractStrategy;
  threads: number;
  seek: SeekMode;
  signal?: AbortSignal;
  timeoutMs?: number;
  probe?: ProbeResult;
}

function validate(path: string, plans: ClipPlan[], options: ExtractOptions) {
  nonEmptyString('path', path);
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const size = options.size === undefined ? 224 : positiveInteger('options.size', options.size, LIMITS.size);
  const fit = options.fit === undefined ? 'cover' : oneOf('options.fit', options.fit, FIT_NAMES);
  const strategy =
    options.strategy === undefined
      ? 'auto'
      : oneOf('options.strategy', options.strategy, ['auto', 'decode', 'seek'] as const);
  if (options.timeoutMs !== undefined) positiveNumber('options.timeoutMs', options.timeoutMs);
  const threads =
    options.threads === undefined
      ? 0
      : nonNegativeInteger('options.threads', options.threads, LIMITS.parallel);
  const decoder =
    options.decoder === undefined
      ? 'auto'
      : isDecoder(options.decoder)
        ? options.decoder
        : oneOf('options.decoder', options.decoder, decoderRequests());
  const seek =
    options.seek === undefined
      ? 'exact'
      : oneOf('options.seek', options.seek, ['exact', 'keyframe'] as const);
  if (!Array.isArray(plans) || plans.length === 0)
    throw invalid('plans', 'a non-empty array of ClipPlan', plans);
  plans.forEach((plan, i) => {
    if (!isPlainObject(plan) || !Array.isArray(plan.timestamps) || plan.timestamps.length === 0) {
      throw invalid(
        `plans[${i}].timestamps`,
        'a non-empty array of seconds',
        (plan as ClipPlan | undefined)?.timestamps,
      );
    }
    if (!Array.isArray(plan.mask) || plan.mask.length !== plan.timestamps.length) {
      throw invalid(`plans[${i}].mask`, `an array of ${plan.timestamps.length} booleans`, plan.mask);
    }
    plan.timestamps.forEach((t, k) => {
      if (typeof t !== 'number' || !Number.isFinite(t))
        throw invalid(`plans[${i}].timestamps[${k}]`, 'a finite number of seconds', t);
    });
  });
  const signal = checkSignal('options.signal', options.signal);
  return {
    size,
    fit,
    strategy,
    threads,
    decoder,
    seek,
    signal,
    timeoutMs: options.timeoutMs,
    probe: options.probe,
  };
}

/** Decodes, resizes and packs the planned frames of one video with the decoder asked for. */
export async function extractClips(
  path: string,
  plans: ClipPlan[],
  options: ExtractOptions = {},
): Promise<FrameClip[]> {
  const { decoder: request, probe, ...resolved } = validate(path, plans, options);
  resolved.signal?.throwIfAborted();
  const decoder = await decoderFor('options.decoder', request);
  const { signal, timeoutMs } = resolved;
  const video = await decoder.open(path, { signal, timeoutMs: timeoutMs ?? 30_000, probe });
  try {
    return await video.decode(plans, resolved);
  } finally {
    await video.close();
  }
}
