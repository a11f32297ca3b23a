/**
 * What both decoders share after decoding: resizing a frame (sharp, raw in and raw out) and
 * packing the chosen frames into `FrameClip`s with their real timestamps, masks and warnings.
 */
import sharp from 'sharp';
import { IngestError, ShapeError } from '../errors.js';
import { fmt, pickFrame, pickNearest } from './extract-plan.js';
import type { SeekMode } from './decode-plan.js';
import type { ClipPlan, Fit, FrameClip } from './types.js';

/** A decoded frame: its real presentation time (seconds), and its picture resized to size x size rgb24. */
export interface DecodedFrame {
  pts: number;
  image: Promise<Buffer>;
}

/**
 * Raw rgb24 width x height → raw rgb24 size x size, by sharp: `cover` scales to fill and
 * crops the centre, `contain` fits inside and pads with black. `rotate` (clockwise degrees)
 * turns the picture first, for a decoder that does not (libav).
 */
export async function resizeFrame(
  raw: Uint8Array,
  width: number,
  height: number,
  size: number,
  fit: Fit,
  rotate = 0,
): Promise<Buffer> {
  if (width === size && height === size && rotate === 0)
    return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let image = sharp(raw, { raw: { width, height, channels: 3 } });
  if (rotate !== 0) image = image.rotate(rotate);
  const { data, info } = await image
    .resize(size, size, { fit, position: 'centre', background: { r: 0, g: 0, b: 0 } })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size || info.channels !== 3) {
    throw new ShapeError('resize', [size, size, 3], [info.height, info.width, info.channels]);
  }
  return data;
}

export interface PackOptions {
  size: number;
  seek: SeekMode;
  period: number;
  targetOf(ts: number): number;
  /** The file was damaged: some frames may be missing. */
  damaged: boolean;
  /** Warnings for every clip (a decoder that failed part-way). */
  warnings: string[];
  /** The decoder's error lines, a few of which go into each clip's warnings. */
  decodeErrors: string[];
  /** Who decoded, for the warnings: `ffmpeg` or `libav`. */
  decoder: string;
  /** Why nothing decoded, for the `CORRUPT` error. */
  failure?: string;
}

/**
 * Packs the frames of each plan from `decoded` (any order). `exact`: the first frame at or
 * after each search target (see pickFrame). `keyframe`: the keyframe nearest to the planned
 * time inside the clip's span; a keyframe the clip already holds is a repeat (mask false).
 * A planned frame without its own frame is replaced by the nearest decoded one, masked, with
 * a warning; a frame whose time lies outside its clip's span is never real. A video where no
 * planned frame is real is `CORRUPT`.
 */
export async function packClips(
  path: string,
  plans: readonly ClipPlan[],
  decoded: DecodedFrame[],
  o: PackOptions,
): Promise<FrameClip[]> {
  decoded.sort((a, b) => a.pts - b.pts);
  const corrupt = (why: string): IngestError =>
    new IngestError('CORRUPT', path, `${path}: no frame could be decoded (${why})`);
  if (decoded.length === 0)
    throw corrupt(o.failure ?? (o.decodeErrors.slice(-3).join('; ') || `${o.decoder} returned no frames`));
  await Promise.all(decoded.map((d) => d.image));
  const pts = decoded.map((d) => d.pts);
  const clips: FrameClip[] = [];
  for (const plan of plans) clips.push(await packClip(plan, decoded, pts, o));
  // Frames that decode but none of them where the plan asked: not a result.
  if (plans.some((p) => p.mask.some(Boolean)) && clips.every((c) => !c.mask.some(Boolean))) {
    const errors = o.decodeErrors.length > 0 ? `; ${o.decodeErrors.slice(-3).join('; ')}` : '';
    throw corrupt(`none of the ${pts.length} frames ${o.decoder} returned is a planned frame${errors}`);
  }
  return clips;
}

/** One plan's clip from `decoded` (ascending, images resolved; `pts` their times), with its mask and warnings (see packClips). */
async function packClip(
  plan: ClipPlan,
  decoded: readonly DecodedFrame[],
  pts: readonly number[],
  o: PackOptions,
): Promise<FrameClip> {
  const frameBytes = o.size * o.size * 3;
  const T = plan.timestamps.length;
  const data = new Uint8Array(T * frameBytes);
  const timestamps: number[] = [];
  const mask: boolean[] = [];
  const warnings: string[] = [...o.warnings];
  // The clip's span; an exact frame may start up to one period before it (on display at its start).
  const inSpan = (t: number): boolean =>
    t >= plan.start - (o.seek === 'exact' ? o.period : 0) - 1e-6 && t <= plan.end + 1e-6;
  const seen = new Set<number>();
  let repeats = 0;
  let outside = 0;
  let noKeyframe = 0;
  for (let k = 0; k < T; k++) {
    const ts = plan.timestamps[k];
    const { index, exact } =
      o.seek === 'keyframe'
        ? pickKeyframe(pts, ts, plan.start, plan.end)
        : pickFrame(pts, o.targetOf(ts), o.period, o.damaged);
    const frame = decoded[index];
    if (!exact && o.seek === 'exact')
      warnings.push(`frame at ${fmt(ts)} s could not be decoded; repeated the frame at ${fmt(frame.pts)} s`);
    if (!exact && o.seek === 'keyframe') noKeyframe++;
    let real = plan.mask[k] && exact;
    if (real && !inSpan(frame.pts)) {
      real = false;
      outside++;
    }
    if (real && o.seek === 'keyframe' && seen.has(index)) {
      real = false;
      repeats++;
    }
    if (real) seen.add(index);
    data.set(await frame.image, k * frameBytes); // [T, S, S, 3]: frame k at offset k*S*S*3
    timestamps.push(Math.round(frame.pts * 1e6) / 1e6);
    mask.push(real);
  }
  const span = `${fmt(plan.start)}-${fmt(plan.end)} s`;
  if (noKeyframe > 0)
    warnings.push(
      `no keyframe lies inside the clip's span ${span}: ${noKeyframe} of ${T} frames took the nearest outside it (masked)`,
    );
  if (repeats > 0)
    warnings.push(`${repeats} of ${T} frames repeat a keyframe already in the clip (keyframe mode): masked`);
  if (outside > 0) warnings.push(`${outside} of ${T} frames lie outside the clip's span ${span}: masked`);
  const clip: FrameClip = {
    index: plan.index,
    start: plan.start,
    end: plan.end,
    data,
    shape: [T, o.size, o.size, 3],
    timestamps,
    mask,
  };
  if (o.decodeErrors.length > 0)
    warnings.push(`${o.decoder} reported decode errors: ${o.decodeErrors.slice(0, 3).join(' | ')}`);
  if (warnings.length > 0) clip.warnings = warnings;
  return clip;
}

/**
 * Keyframe mode: the index in `pts` (ascending; the keyframes decoded) of the keyframe nearest
 * to `ts` inside [start, end], the earlier on a tie; when the span holds none, the nearest
 * of all, not exact.
 */
export function pickKeyframe(
  pts: readonly number[],
  ts: number,
  start: number,
  end: number,
): { index: number; exact: boolean } {
  let lo = 0;
  while (lo < pts.length && pts[lo] < start - 1e-6) lo++;
  let hi = lo;
  while (hi < pts.length && pts[hi] <= end + 1e-6) hi++;
  if (hi > lo) return { index: lo + pickNearest(pts.slice(lo, hi), ts), exact: true };
  return { index: pickNearest(pts, ts), exact: false };
}
