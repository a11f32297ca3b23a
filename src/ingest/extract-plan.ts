/**
 * The pure half of extractClips(): which frames to ask ffmpeg for, the command line and
 * filter graph that ask for them, reading ffmpeg's log, and picking the frame for each
 * planned timestamp. Nothing here runs a process or touches a file, so all of it is tested
 * without ffmpeg (test/ingest/extract-plan.test.ts). The rules are in extract.ts's module
 * comment.
 */
import { LIMITS } from '../validate.js';
import type { SeekMode } from './decode-plan.js';
import type { ClipPlan, ProbeResult } from './types.js';

/** Seek when planned frames are this far apart on average (seconds); decode the span otherwise. */
export const SEEK_MIN_GAP_S = 2.5;
/** `auto` never opens more inputs than this in one ffmpeg (each is a demuxer and a decoder). */
export const MAX_SEEK_INPUTS = 64;
/** Above this many distinct frames, `select` gets no expression and frames are picked in Node. */
export const MAX_SELECT_TERMS = 1500;

export type ExtractStrategy = 'auto' | 'decode' | 'seek';

/**
 * The default per-video decode timeout: 60 s + 2 s per second of video, at most
 * `LIMITS.timeoutMs` (a day, the longest `--timeout`). Uncapped, a video longer than about
 * 12.4 days asked for more than setTimeout's 2^31-1 ms, and Node fired the timer at once.
 */
export function videoTimeoutMs(duration: number): number {
  return Math.min(60_000 + 2000 * duration, LIMITS.timeoutMs);
}

/** Seconds with six decimals, as ffmpeg is given them and warnings print them. */
export function fmt(t: number): string {
  return (Math.round(t * 1e6) / 1e6).toFixed(6);
}

export interface ExtractPlan {
  /** Seconds between frames at the nominal rate. */
  period: number;
  /** The search target of a planned timestamp: the first frame at or after it is the frame on display at `ts`. */
  targetOf(ts: number): number;
  /** Distinct targets, ascending. */
  targets: number[];
  meanGap: number;
  useSeek: boolean;
  /** ffmpeg's arguments, the binary excluded. */
  args: string[];
  /** showinfo filter instance → output branch (seek: one per input; decode: one). */
  showinfoBranch: Map<number, number>;
  /**
   * The input seeks (`-ss`): each branch's first frame is then the keyframe it landed on,
   * and nothing decoded before that keyframe is kept (see `landedLate`).
   */
  seeks: boolean;
}

/**
 * A select expression that keeps what `keep` keeps, only from the first keyframe decoded on,
 * and keeps that keyframe too: after a seek, frames decoded before any keyframe are garbage
 * (MPEG-TS lands anywhere), and the keyframe's time says whether the seek landed late.
 * Registers: 1 = a keyframe was seen, 2 = this frame is the first keyframe.
 */
function gated(keep: string): string {
  return `st(2,key*not(ld(1)));st(1,max(ld(1),key));gt(ld(2)+ld(1)*(${keep}),0)`;
}

/**
 * Whether a seeking plan landed past a target's keyframe (or on no keyframe at all): the
 * first frame of a branch (the keyframe it landed on) lies after that branch's first target.
 * The frames before the target are then missing: `extractCli` decodes again from the start.
 */
export function landedLate(
  plan: Pick<ExtractPlan, 'seeks' | 'useSeek' | 'targets'>,
  log: ExtractLog,
): boolean {
  if (!plan.seeks) return false;
  // Per branch: its first target, and its first frame (seek: one branch per target; decode: one).
  const branches = plan.useSeek ? plan.targets : plan.targets.slice(0, 1);
  return branches.some((t, i) => {
    const first = log.ptsByBranch.get(i)?.[0];
    return first === undefined || first > t + 1e-6;
  });
}

/**
 * The search targets of `plans`: distinct, ascending. `exact`: the frame on display at a
 * planned `ts` is the first frame at or after `targetOf(ts)`, one nominal period earlier
 * (+0.1 ms against rounding). `keyframe`: the keyframe nearest to `ts` itself. Both decoders
 * use this rule.
 */
export function searchTargets(
  plans: readonly ClipPlan[],
  info: ProbeResult,
  seek: SeekMode = 'exact',
): { period: number; targetOf(ts: number): number; targets: number[] } {
  const period = 1 / (info.nominalFrameRate || info.avgFrameRate);
  const targetOf =
    seek === 'keyframe' ? (ts: number): number => ts : (ts: number): number => ts - period + 1e-4;
  const targets = [...new Set(plans.flatMap((p) => p.timestamps))].sort((a, b) => a - b).map(targetOf);
  return { period, targetOf, targets };
}

/**
 * Builds the one ffmpeg command that returns every frame `plans` need, as raw rgb24 on stdout.
 * `fromStart`: decode from the file's start, never seek (after a seek that landed late).
 */
export function planExtraction(
  input: string,
  plans: readonly ClipPlan[],
  info: ProbeResult,
  strategy: ExtractStrategy,
  threads: number,
  seek: SeekMode = 'exact',
  fromStart = false,
): ExtractPlan {
  const { period, targetOf, targets } = searchTargets(plans, info, seek);
  const span = targets[targets.length - 1] - targets[0];
  const meanGap = targets.length > 1 ? span / (targets.length - 1) : Infinity;
  // Keyframe mode: one pass that decodes keyframes only (`-skip_frame nokey`); the nearest is picked in Node.
  const keyframes = seek === 'keyframe';
  const useSeek =
    !keyframes &&
    !fromStart &&
    (strategy === 'seek' ||
      (strategy === 'auto' &&
        targets.length > 1 &&
        targets.length <= MAX_SEEK_INPUTS &&
        meanGap >= SEEK_MIN_GAP_S));

  const common = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info', '-copyts'];
  const showinfoBranch = new Map<number, number>();
  const command = { input, info, targets, threads, showinfoBranch };
  const args = [
    ...common,
    ...(useSeek ? seekingArgs(command) : decodingArgs(command, period, keyframes, fromStart)),
  ];
  return {
    period,
    targetOf,
    targets,
    meanGap,
    useSeek,
    args,
    showinfoBranch,
    seeks: useSeek || args.includes('-ss'),
  };
}

/** The ffmpeg output: raw rgb24 frames on stdout, every frame as decoded (no duplicates or drops). */
const RAW_OUTPUT = ['-an', '-sn', '-dn', '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];

/** What the inputs and filters of the command are built from; `showinfoBranch` is filled in (showinfo filter index → branch). */
interface CommandInputs {
  input: string;
  info: ProbeResult;
  targets: readonly number[];
  threads: number;
  showinfoBranch: Map<number, number>;
}

/** The seeking command's inputs, filters and output: one input per target, each seeking to the keyframe before it. */
function seekingArgs({ input, info, targets, threads, showinfoBranch }: CommandInputs): string[] {
  const { width, height } = info;
  const args: string[] = [];
  // Each input seeks to the keyframe before its target (an input -ss counts from the file's
  // start time, and lands a little early to be safe); `select` on the real timestamps
  // (-copyts keeps them) then takes the first frame at or after the target. ffmpeg's own
  // accurate seek is not used: with -copyts it can land a frame late on MPEG-TS.
  // MP4/MOV and Matroska land on the keyframe before the point asked; others (MPEG-TS)
  // can land a few frames after it, so they start a second earlier.
  const preroll = /mov|mp4|matroska|webm/.test(info.formatName ?? '') ? 0.05 : 1;
  for (const t of targets)
    args.push(
      '-threads',
      String(threads),
      '-noaccurate_seek',
      '-ss',
      fmt(Math.max(0, t - info.startTime - preroll)),
      '-i',
      input,
    );
  const chains = targets.map((t, i) => {
    // Each input: its first frame at/after the target, logged with its real pts. Filters
    // are numbered across the graph: select, trim, showinfo, scale per input.
    // The keyframe landed on comes first (gated), then the target's frame: at most 2 frames.
    showinfoBranch.set(4 * i + 2, i);
    return `[${i}:v:0]select='${gated(`gte(t,${fmt(t)})`)}',trim=end_frame=2,showinfo,scale=${width}:${height}[v${i}]`;
  });
  const graph = `${chains.join(';')};${targets.map((_, i) => `[v${i}]`).join('')}concat=n=${targets.length}:v=1:a=0[out]`;
  args.push('-filter_complex', graph, '-map', '[out]', ...RAW_OUTPUT);
  return args;
}

/**
 * The decoding command's input, filters and output: one pass from before the first target
 * (or the file's start) to just after the last, `select` keeping the frames wanted.
 */
function decodingArgs(
  { input, info, targets, threads, showinfoBranch }: CommandInputs,
  period: number,
  keyframes: boolean,
  fromStart: boolean,
): string[] {
  const { width, height } = info;
  const args: string[] = [];
  // Start decoding a little before the first target, from the keyframe before it
  // (relative to the file's start); `select` is exact.
  const from = targets[0] - info.startTime > 2 && !fromStart ? targets[0] - 1 : undefined;
  if (from !== undefined) args.push('-noaccurate_seek', '-ss', fmt(from - info.startTime));
  if (keyframes) args.push('-skip_frame', 'nokey');
  args.push('-threads', String(threads), '-i', input, '-map', '0:v:0');
  // Stop after the frame following the last target; a variable-rate stream may leave a wide
  // gap before it, so allow a generous margin (decoding a second more is cheap).
  const end = targets[targets.length - 1] + Math.max(1, 8 * period);
  let select = '';
  if (keyframes) {
    // Decoders that ignore -skip_frame (VP9) decode every frame: keep the keyframes only.
    select = `select='eq(key,1)',`;
  } else if (targets.length <= MAX_SELECT_TERMS) {
    const terms = targets.map((t) => `gte(t,${fmt(t)})*lt(ld(0),${fmt(t)})`).join('+');
    select = `select='st(0,if(isnan(prev_t),-1e9,prev_t));${from === undefined ? terms : gated(terms)}',`;
  } else if (from !== undefined) {
    select = `select='${gated('1')}',`;
  }
  // The keyframe nearest to the last target may lie a GOP past it: keyframe mode reads on.
  const trim = end < info.startTime + info.duration && !keyframes ? `trim=end=${fmt(end)},` : '';
  args.push('-vf', `${trim}${select}showinfo,scale=${width}:${height}`, ...RAW_OUTPUT);
  showinfoBranch.set((trim ? 1 : 0) + (select ? 1 : 0), 0);
  return args;
}

const SHOWINFO =
  /\[Parsed_showinfo_(\d+) @ [^\]]+\] n:\s*\d+ pts:\s*(-?\d+) pts_time:\s*(\S+).*?\bs:(\d+)x(\d+)/;
const SHOWINFO_TB = /\[Parsed_showinfo_(\d+) @ [^\]]+\] config in time_base: (\d+)\/(\d+)/;
/** ffmpeg log lines that mean the input is damaged. */
const DECODE_ERROR =
  /error while decoding|invalid data found|corrupt|missing picture|truncat|invalid nal|concealing|partial file|overread|no frame!|moov atom not found|decode_slice_header error/i;
const MAX_DECODE_ERRORS = 20;

/** What ffmpeg's log said: the pts of each frame per branch, the frame sizes, decode errors. */
export class ExtractLog {
  readonly ptsByBranch = new Map<number, number[]>();
  readonly sizes = new Set<string>();
  readonly decodeErrors: string[] = [];
  private readonly timeBase = new Map<number, number>();

  /** `input` is the argument given to `-i`; it is replaced by `<input>` in kept error lines. */
  constructor(
    private readonly showinfoBranch: ReadonlyMap<number, number>,
    private readonly input: string,
  ) {}

  /** Reads one stderr line. */
  line(line: string): void {
    let m = SHOWINFO.exec(line);
    if (m) {
      const idx = Number(m[1]);
      const tb = this.timeBase.get(idx);
      // The integer pts times the time base is exact; pts_time is rounded to 6 digits.
      const pts = tb !== undefined ? Number(m[2]) * tb : Number(m[3]);
      const branch = this.showinfoBranch.get(idx) ?? 0;
      if (!this.ptsByBranch.has(branch)) this.ptsByBranch.set(branch, []);
      this.ptsByBranch.get(branch)!.push(pts);
      this.sizes.add(`${m[4]}x${m[5]}`);
      return;
    }
    m = SHOWINFO_TB.exec(line);
    if (m && Number(m[3]) > 0) {
      this.timeBase.set(Number(m[1]), Number(m[2]) / Number(m[3]));
      return;
    }
    const text = line.replaceAll(this.input, '<input>');
    if (
      DECODE_ERROR.test(text) &&
      !/^\s*(Input|Output|Stream|Duration|Metadata) /.test(text) &&
      this.decodeErrors.length < MAX_DECODE_ERRORS
    ) {
      this.decodeErrors.push(text.trim());
    }
  }

  /** The pts of the frames on stdout, in stdout order: in order (decode) or input by input (seek). */
  framePts(plan: Pick<ExtractPlan, 'useSeek' | 'targets'>): number[] {
    return plan.useSeek
      ? plan.targets.flatMap((_, i) => this.ptsByBranch.get(i) ?? [])
      : (this.ptsByBranch.get(0) ?? []);
  }
}

/**
 * The decoded frame for `target` in `pts` (ascending): the first at or after it, and
 * whether that is the right frame (`exact`). On a damaged file the next decoded frame may
 * lie far past a hole; it is accepted only within 4 periods, else the one before is taken
 * and `exact` is false. Past the last frame, the last is exact when within 2 periods of an
 * intact file's end.
 */
export function pickFrame(
  pts: readonly number[],
  target: number,
  period: number,
  damaged: boolean,
): { index: number; exact: boolean } {
  let lo = 0;
  let hi = pts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pts[mid] < target - 1e-6) lo = mid + 1;
    else hi = mid;
  }
  if (lo < pts.length && (!damaged || lo === 0 || pts[lo] - target <= 4 * period))
    return { index: lo, exact: true };
  const previous = Math.max(0, lo - 1);
  return { index: previous, exact: !damaged && target - pts[previous] <= 2 * period };
}

/** The index of the time in `pts` (ascending) nearest to `target`; the earlier one on a tie. */
export function pickNearest(pts: readonly number[], target: number): number {
  let best = 0;
  for (let i = 1; i < pts.length; i++)
    if (Math.abs(pts[i] - target) < Math.abs(pts[best] - target) - 1e-9) best = i;
  return best;
}
