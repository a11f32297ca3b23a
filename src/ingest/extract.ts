/**
 * extractClips(): the planned frames of one video, decoded, resized and packed as
 * `FrameClip`s, by the decoder asked for (a name, resolved here, or a decoder object): the
 * video is opened, decoded and closed. The CLI decoder's way is in decoders/cli/extract.ts,
 * libav's in decoders/libav/.
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
import { SEEK_MODES } from './decode-plan.js';

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
  const seek = options.seek === undefined ? 'exact' : oneOf('options.seek', options.seek, SEEK_MODES);
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
