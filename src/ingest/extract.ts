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
import { FfmpegError, ShapeError } from '../errors.js';
import { debug } from '../log.js';
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
import { packClips, resizeFrame, type DecodedFrame } from './clips.js';
import type { SeekMode } from './decode-plan.js';
import {
  createDecoder,
  decoderRequests,
  unconvertible,
  type DecoderRequest,
  type VideoDecoder,
} from './decoders.js';
import {
  ExtractLog,
  landedLate,
  planExtraction,
  videoTimeoutMs,
  type ExtractStrategy,
} from './extract-plan.js';
import { checkBinaries, ffmpegInput, runProcess, type ProcessOptions } from './ffmpeg.js';
import { withOpenArgs } from './open-policy.js';
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
  decoder: DecoderRequest;
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

function isDecoder(value: unknown): value is VideoDecoder {
  return isPlainObject(value) && typeof value.decode === 'function' && typeof value.name === 'string';
}

/** Decodes, resizes and packs the planned frames of one video with the decoder asked for. */
export async function extractClips(
  path: string,
  plans: ClipPlan[],
  options: ExtractOptions = {},
): Promise<FrameClip[]> {
  const { decoder: request, ...resolved } = validate(path, plans, options);
  resolved.signal?.throwIfAborted();
  const decoder = typeof request === 'string' ? await createDecoder(request) : request;
  return decoder.decode(path, plans, { ...resolved, decoder: decoder.name });
}

/** extractClips() by one ffmpeg process (the `cli` decoder). See the module comment. */
export async function extractCli(
  path: string,
  plans: ClipPlan[],
  options: ResolvedExtractOptions,
  probe: (path: string) => Promise<ProbeResult>,
): Promise<FrameClip[]> {
  const { size, fit, strategy, threads, signal, seek } = options;
  const info = options.probe ?? (await probe(path));
  const { ffmpeg } = await checkBinaries();
  signal?.throwIfAborted();

  const input = ffmpegInput(path);
  const timeoutMs = options.timeoutMs ?? videoTimeoutMs(info.duration);
  const attempt = async (fromStart: boolean) => {
    const plan = planExtraction(input, plans, info, strategy, threads, seek, fromStart);
    const how = `${plan.useSeek ? 'seek' : 'decode'}${fromStart ? ' from the start' : ''}`;
    debug(
      'extract %s: %s, %d targets, mean gap %s s',
      path,
      how,
      plan.targets.length,
      plan.meanGap.toFixed(2),
    );
    // stdout: raw frames in order. stderr: one showinfo line per frame, with its pts.
    const frames = new RawFrames(info.width, info.height, size, fit);
    const log = new ExtractLog(plan.showinfoBranch, input);
    // Every input opens with the declared demuxers and protocols only (open-policy.ts).
    const failure = await runKeepingFailure(ffmpeg, withOpenArgs(plan.args), {
      signal,
      timeoutMs,
      onStdout: (chunk) => frames.push(chunk),
      onStderrLine: (line) => log.line(line),
    });
    return { plan, frames, log, failure };
  };
  let run = await attempt(false);
  // A seek that landed past a target's keyframe (MPEG-TS with a GOP longer than the preroll):
  // the frames before the target are missing, so decode from the start.
  if (run.failure === undefined && landedLate(run.plan, run.log)) run = await attempt(true);
  const { plan, frames, log, failure } = run;

  const pts = log.framePts(plan);
  const { sizes, decodeErrors } = log;
  if (sizes.size > 0 && !sizes.has(`${info.width}x${info.height}`)) {
    throw new ShapeError(
      `extract ${path} (ffmpeg frame size; probe says rotation ${info.rotation})`,
      [info.height, info.width, 3],
      [...sizes][0].split('x').reverse().map(Number).concat(3),
    );
  }
  const count = Math.min(frames.images.length, pts.length);
  // A pixel format the scaler cannot convert (4-bit bgr4): UNSUPPORTED, as libav says, not CORRUPT.
  const unconverted = count === 0 && failure ? UNCONVERTIBLE.exec(failure.stderr)?.[0] : undefined;
  if (unconverted) throw unconvertible(path, unconverted, failure);
  const decoded: DecodedFrame[] = [];
  for (let i = 0; i < count; i++) decoded.push({ pts: pts[i], image: frames.images[i] });
  const warnings: string[] = [];
  if (failure)
    warnings.push(
      `ffmpeg failed part-way (${failure.exitCode ?? failure.signal}); ${failure.stderr.trim().split('\n').slice(-1)[0] ?? ''}`,
    );
  return packClips(path, plans, decoded, {
    size,
    seek,
    period: plan.period,
    targetOf: plan.targetOf,
    damaged: failure !== undefined || decodeErrors.length > 0,
    warnings,
    decodeErrors,
    decoder: 'ffmpeg',
    failure: failure?.message,
  });
}

/** What ffmpeg says when its scaler cannot take a decoded pixel format. */
const UNCONVERTIBLE =
  /Impossible to convert between the formats[^\n]*|is not supported as input pixel format[^\n]*/;

/**
 * Runs ffmpeg. An error exit is returned, not thrown: the frames written before it still
 * count, and the clips say they are damaged. A timeout or an abort is thrown.
 */
async function runKeepingFailure(
  ffmpeg: string,
  args: string[],
  options: ProcessOptions,
): Promise<FfmpegError | undefined> {
  try {
    await runProcess(ffmpeg, args, options);
    return undefined;
  } catch (error) {
    if (!(error instanceof FfmpegError) || error.code === 'TIMEOUT') throw error;
    return error;
  }
}

/**
 * Cuts ffmpeg's raw rgb24 stdout into frames and starts resizing each as soon as it is
 * complete, so only resized frames are held.
 */
class RawFrames {
  /** The resized frames, in the order ffmpeg wrote them. */
  readonly images: Array<Promise<Buffer>> = [];
  private readonly frameBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly width: number,
    private readonly height: number,
    private readonly size: number,
    private readonly fit: Fit,
  ) {
    this.frameBytes = width * height * 3;
  }

  push(chunk: Buffer): void {
    const { frameBytes } = this;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(frameBytes - this.pendingBytes, chunk.length - offset);
      this.pending.push(chunk.subarray(offset, offset + take));
      this.pendingBytes += take;
      offset += take;
      if (this.pendingBytes === frameBytes) {
        const raw = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, frameBytes);
        const image = resizeFrame(raw, this.width, this.height, this.size, this.fit);
        image.catch(() => undefined); // awaited by extractCli; do not let an early failure go unhandled
        this.images.push(image);
        this.pending = [];
        this.pendingBytes = 0;
      }
    }
  }
}
