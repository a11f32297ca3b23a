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
import sharp from 'sharp';
import { FfmpegError, IngestError, ShapeError } from '../errors.js';
import { debug } from '../log.js';
import { checkSignal, invalid, isPlainObject, nonEmptyString, nonNegativeInteger, oneOf, positiveInteger, positiveNumber } from '../validate.js';
import { checkBinaries, runProcess } from './ffmpeg.js';
import { probe as probeVideo } from './probe.js';
import type { ClipPlan, FrameClip, ProbeResult } from './types.js';

/** Seek when planned frames are this far apart on average (seconds); decode the span otherwise. */
export const SEEK_MIN_GAP_S = 2.5;
/** `auto` never opens more inputs than this in one ffmpeg (each is a demuxer and a decoder). */
export const MAX_SEEK_INPUTS = 64;
/** Above this many distinct frames, `select` gets no expression and frames are picked in Node. */
const MAX_SELECT_TERMS = 1500;

export interface ExtractOptions {
  /** Output frames are size x size pixels. @default 224 */
  size?: number;
  /** `cover`: fill and centre-crop; `contain`: fit inside and pad with black. @default 'cover' */
  fit?: 'cover' | 'contain';
  signal?: AbortSignal;
  /** Kill ffmpeg after this many milliseconds (error code `TIMEOUT`). @default 60000 + 2000 per second of video */
  timeoutMs?: number;
  /** The video's probe, when the caller already has it (saves one ffprobe). @default undefined (probe here) */
  probe?: ProbeResult;
  /** `decode` the span once, `seek` to each frame, or choose by the rule above. @default 'auto' */
  strategy?: 'auto' | 'decode' | 'seek';
  /**
   * ffmpeg decoding threads for this process; 0 lets ffmpeg choose (one per core). When
   * several decodes run beside the backbone on few cores, fewer threads waste less CPU.
   * @default 0
   */
  threads?: number;
}

interface Decoded {
  /** Real presentation time, seconds. */
  pts: number;
  /** The frame resized to size x size rgb24. */
  image: Promise<Buffer>;
}

const SHOWINFO = /\[Parsed_showinfo_(\d+) @ [^\]]+\] n:\s*\d+ pts:\s*(-?\d+) pts_time:\s*(\S+).*?\bs:(\d+)x(\d+)/;
/** ffmpeg log lines that mean the input is damaged. */
const DECODE_ERROR = /error while decoding|invalid data found|corrupt|missing picture|truncat|invalid nal|concealing|partial file|overread|no frame!|moov atom not found|decode_slice_header error/i;
const SHOWINFO_TB = /\[Parsed_showinfo_(\d+) @ [^\]]+\] config in time_base: (\d+)\/(\d+)/;

function fmt(t: number): string {
  return (Math.round(t * 1e6) / 1e6).toFixed(6);
}

function validate(path: string, plans: ClipPlan[], options: ExtractOptions) {
  nonEmptyString('path', path);
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const size = options.size === undefined ? 224 : positiveInteger('options.size', options.size);
  const fit = options.fit === undefined ? 'cover' : oneOf('options.fit', options.fit, ['cover', 'contain'] as const);
  const strategy = options.strategy === undefined ? 'auto' : oneOf('options.strategy', options.strategy, ['auto', 'decode', 'seek'] as const);
  if (options.timeoutMs !== undefined) positiveNumber('options.timeoutMs', options.timeoutMs);
  const threads = options.threads === undefined ? 0 : nonNegativeInteger('options.threads', options.threads);
  if (!Array.isArray(plans) || plans.length === 0) throw invalid('plans', 'a non-empty array of ClipPlan', plans);
  plans.forEach((plan, i) => {
    if (!isPlainObject(plan) || !Array.isArray(plan.timestamps) || plan.timestamps.length === 0) {
      throw invalid(`plans[${i}].timestamps`, 'a non-empty array of seconds', (plan as ClipPlan | undefined)?.timestamps);
    }
    if (!Array.isArray(plan.mask) || plan.mask.length !== plan.timestamps.length) {
      throw invalid(`plans[${i}].mask`, `an array of ${plan.timestamps.length} booleans`, plan.mask);
    }
    plan.timestamps.forEach((t, k) => {
      if (typeof t !== 'number' || !Number.isFinite(t)) throw invalid(`plans[${i}].timestamps[${k}]`, 'a finite number of seconds', t);
    });
  });
  return { size, fit, strategy, threads };
}

/** Decodes, resizes and packs the planned frames of one video. See the module comment. */
export async function extractClips(path: string, plans: ClipPlan[], options: ExtractOptions = {}): Promise<FrameClip[]> {
  const { size, fit, strategy, threads } = validate(path, plans, options);
  const signal = checkSignal('options.signal', options.signal);
  const info = options.probe ?? (await probeVideo(path, { signal }));
  const { ffmpeg } = await checkBinaries();
  signal?.throwIfAborted();

  const period = 1 / (info.nominalFrameRate || info.avgFrameRate);
  // "The first frame at or after target" is the frame on display at ts.
  const targetOf = (ts: number): number => ts - period + 1e-4;
  const targets = [...new Set(plans.flatMap((p) => p.timestamps))].sort((a, b) => a - b).map(targetOf);
  const span = targets[targets.length - 1] - targets[0];
  const meanGap = targets.length > 1 ? span / (targets.length - 1) : Infinity;
  const useSeek = strategy === 'seek' || (strategy === 'auto' && targets.length > 1 && targets.length <= MAX_SEEK_INPUTS && meanGap >= SEEK_MIN_GAP_S);
  const timeoutMs = options.timeoutMs ?? 60_000 + 2000 * info.duration;
  const width = info.width;
  const height = info.height;
  const frameBytes = width * height * 3;

  const input = `file:${path}`;
  const common = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info'];
  const output = ['-an', '-sn', '-dn', '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  let args: string[];
  /** showinfo instance index → which output slot (seek: one per input; decode: one). */
  const showinfoBranch = new Map<number, number>();
  if (useSeek) {
    args = [...common, '-copyts'];
    // Each input seeks to the keyframe before its target (an input -ss counts from the file's
    // start time, and lands a little early to be safe); `select` on the real timestamps
    // (-copyts keeps them) then takes the first frame at or after the target. ffmpeg's own
    // accurate seek is not used: with -copyts it can land a frame late on MPEG-TS.
    // MP4/MOV and Matroska land on the keyframe before the point asked; others (MPEG-TS)
    // can land a few frames after it, so they start a second earlier.
    const preroll = /mov|mp4|matroska|webm/.test(info.formatName ?? '') ? 0.05 : 1;
    for (const t of targets) args.push('-threads', String(threads), '-noaccurate_seek', '-ss', fmt(Math.max(0, t - info.startTime - preroll)), '-i', input);
    const chains: string[] = [];
    let filterIndex = 0;
    targets.forEach((t, i) => {
      // Each input: its first frame at/after the target, logged with its real pts.
      chains.push(`[${i}:v:0]select='gte(t,${fmt(t)})',trim=end_frame=1,showinfo,scale=${width}:${height}[v${i}]`);
      showinfoBranch.set(filterIndex + 2, i);
      filterIndex += 4;
    });
    const graph = `${chains.join(';')};${targets.map((_, i) => `[v${i}]`).join('')}concat=n=${targets.length}:v=1:a=0[out]`;
    args.push('-filter_complex', graph, '-map', '[out]', ...output);
  } else {
    // Start decoding a little before the first target, stop after the last.
    const from = targets[0] - info.startTime > 2 ? targets[0] - 1 : undefined;
    args = [...common, '-copyts'];
    // From the keyframe before `from` (relative to the file's start); `select` is exact.
    if (from !== undefined) args.push('-noaccurate_seek', '-ss', fmt(from - info.startTime));
    args.push('-threads', String(threads), '-i', input, '-map', '0:v:0');
    // Stop after the frame following the last target; a variable-rate stream may leave a wide
    // gap before it, so allow a generous margin (decoding a second more is cheap).
    const end = targets[targets.length - 1] + Math.max(1, 8 * period);
    let select = '';
    if (targets.length <= MAX_SELECT_TERMS) {
      const terms = targets.map((t) => `gte(t,${fmt(t)})*lt(ld(0),${fmt(t)})`).join('+');
      select = `select='st(0,if(isnan(prev_t),-1e9,prev_t));${terms}',`;
    }
    const trim = end < info.startTime + info.duration ? `trim=end=${fmt(end)},` : '';
    args.push('-vf', `${trim}${select}showinfo,scale=${width}:${height}`, ...output);
    showinfoBranch.set((trim ? 1 : 0) + (select ? 1 : 0), 0);
  }
  debug('extract %s: %s, %d targets, mean gap %s s', path, useSeek ? 'seek' : 'decode', targets.length, meanGap.toFixed(2));

  // stdout: raw frames in order, each resized as soon as it is complete, so only resized
  // frames are held. stderr: one showinfo line per frame, with its pts.
  const frames: Array<Promise<Buffer>> = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const onStdout = (chunk: Buffer): void => {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(frameBytes - pendingBytes, chunk.length - offset);
      pending.push(chunk.subarray(offset, offset + take));
      pendingBytes += take;
      offset += take;
      if (pendingBytes === frameBytes) {
        const raw = pending.length === 1 ? pending[0] : Buffer.concat(pending, frameBytes);
        const image = resizeFrame(raw, width, height, size, fit);
        image.catch(() => undefined); // awaited below; do not let an early failure go unhandled
        frames.push(image);
        pending = [];
        pendingBytes = 0;
      }
    }
  };
  const timeBase = new Map<number, number>();
  const ptsByBranch = new Map<number, number[]>();
  const sizes = new Set<string>();
  const decodeErrors: string[] = [];
  const onStderrLine = (line: string): void => {
    let m = SHOWINFO.exec(line);
    if (m) {
      const idx = Number(m[1]);
      const tb = timeBase.get(idx);
      const pts = tb !== undefined ? Number(m[2]) * tb : Number(m[3]);
      const branch = showinfoBranch.get(idx) ?? 0;
      if (!ptsByBranch.has(branch)) ptsByBranch.set(branch, []);
      ptsByBranch.get(branch)!.push(pts);
      sizes.add(`${m[4]}x${m[5]}`);
      return;
    }
    m = SHOWINFO_TB.exec(line);
    if (m && Number(m[3]) > 0) {
      timeBase.set(Number(m[1]), Number(m[2]) / Number(m[3]));
      return;
    }
    const text = line.replaceAll(input, '<input>');
    if (DECODE_ERROR.test(text) && !/^\s*(Input|Output|Stream|Duration|Metadata) /.test(text) && decodeErrors.length < 20) decodeErrors.push(text.trim());
  };

  let failure: FfmpegError | undefined;
  try {
    await runProcess(ffmpeg, args, { signal, timeoutMs, onStdout, onStderrLine });
  } catch (error) {
    if (!(error instanceof FfmpegError) || error.code === 'TIMEOUT') throw error;
    failure = error;
  }

  // Pair frames with their pts: in order (decode), or input by input (seek).
  const pts: number[] = useSeek ? targets.flatMap((_, i) => ptsByBranch.get(i) ?? []) : (ptsByBranch.get(0) ?? []);
  if (sizes.size > 0 && !sizes.has(`${width}x${height}`)) {
    throw new ShapeError(`extract ${path} (ffmpeg frame size; probe says rotation ${info.rotation})`, [height, width, 3], [...sizes][0].split('x').reverse().map(Number).concat(3));
  }
  const count = Math.min(frames.length, pts.length);
  const decoded: Decoded[] = [];
  for (let i = 0; i < count; i++) decoded.push({ pts: pts[i], image: frames[i] });
  decoded.sort((a, b) => a.pts - b.pts);
  if (decoded.length === 0) {
    const why = failure ? failure.message : decodeErrors.slice(-3).join('; ') || 'ffmpeg returned no frames';
    throw new IngestError('CORRUPT', path, `${path}: no frame could be decoded (${why})`, { cause: failure });
  }

  await Promise.all(frames);

  const warnings: string[] = [];
  if (failure) warnings.push(`ffmpeg failed part-way (${failure.exitCode ?? failure.signal}); ${failure.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
  const damaged = failure !== undefined || decodeErrors.length > 0;
  /** The first decoded frame at or after `target`; `exact` false when it had to be another. */
  const pick = (target: number): { frame: Decoded; exact: boolean } => {
    let lo = 0;
    let hi = decoded.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (decoded[mid].pts < target - 1e-6) lo = mid + 1;
      else hi = mid;
    }
    // On a damaged file the next decoded frame may lie far past a hole; accept it only close by.
    if (lo < decoded.length && (!damaged || lo === 0 || decoded[lo].pts - target <= 4 * period)) return { frame: decoded[lo], exact: true };
    const previous = decoded[Math.max(0, lo - 1)];
    // Past the last frame: fine on an intact file when within a couple of frames of it.
    return { frame: previous, exact: !damaged && target - previous.pts <= 2 * period };
  };

  const clips: FrameClip[] = [];
  const sharpBytes = size * size * 3;
  for (const plan of plans) {
    const T = plan.timestamps.length;
    const data = new Uint8Array(T * sharpBytes);
    const timestamps: number[] = [];
    const mask: boolean[] = [];
    const clipWarnings: string[] = [...warnings];
    for (let k = 0; k < T; k++) {
      const target = targetOf(plan.timestamps[k]);
      const { frame, exact } = pick(target);
      if (!exact) {
        clipWarnings.push(`frame at ${fmt(plan.timestamps[k])} s could not be decoded; repeated the frame at ${fmt(frame.pts)} s`);
      }
      data.set(await frame.image, k * sharpBytes); // [T, S, S, 3]: frame k at offset k*S*S*3
      timestamps.push(Math.round(frame.pts * 1e6) / 1e6);
      mask.push(plan.mask[k] && exact);
    }
    const clip: FrameClip = { index: plan.index, start: plan.start, end: plan.end, data, shape: [T, size, size, 3], timestamps, mask };
    if (decodeErrors.length > 0) clipWarnings.push(`ffmpeg reported decode errors: ${decodeErrors.slice(0, 3).join(' | ')}`);
    if (clipWarnings.length > 0) clip.warnings = clipWarnings;
    clips.push(clip);
  }
  return clips;
}

/** Raw rgb24 width x height → raw rgb24 size x size, by sharp. */
export async function resizeFrame(raw: Uint8Array, width: number, height: number, size: number, fit: 'cover' | 'contain'): Promise<Buffer> {
  if (width === size && height === size) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const { data, info } = await sharp(raw, { raw: { width, height, channels: 3 } })
    .resize(size, size, { fit, position: 'centre', background: { r: 0, g: 0, b: 0 } })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size || info.channels !== 3) {
    throw new ShapeError('resize', [size, size, 3], [info.height, info.width, info.channels]);
  }
  return data;
}
