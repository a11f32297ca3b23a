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
export async function resizeFrame(raw: Uint8Array, width: number, height: number, size: number, fit: Fit, rotate = 0): Promise<Buffer> {
  if (width === size && height === size && rotate === 0) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
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
 * after each search target (see pickFrame); `keyframe`: the nearest frame. A planned frame
 * without its own frame is replaced by the nearest decoded one, masked, with a warning.
 */
export async function packClips(path: string, plans: readonly ClipPlan[], decoded: DecodedFrame[], o: PackOptions): Promise<FrameClip[]> {
  decoded.sort((a, b) => a.pts - b.pts);
  if (decoded.length === 0) {
    const why = o.failure ?? (o.decodeErrors.slice(-3).join('; ') || `${o.decoder} returned no frames`);
    throw new IngestError('CORRUPT', path, `${path}: no frame could be decoded (${why})`);
  }
  await Promise.all(decoded.map((d) => d.image));
  const pts = decoded.map((d) => d.pts);
  const pick = (target: number): { frame: DecodedFrame; exact: boolean } => {
    const { index, exact } = o.seek === 'keyframe' ? { index: pickNearest(pts, target), exact: true } : pickFrame(pts, target, o.period, o.damaged);
    return { frame: decoded[index], exact };
  };
  const clips: FrameClip[] = [];
  const frameBytes = o.size * o.size * 3;
  for (const plan of plans) {
    const T = plan.timestamps.length;
    const data = new Uint8Array(T * frameBytes);
    const timestamps: number[] = [];
    const mask: boolean[] = [];
    const warnings: string[] = [...o.warnings];
    for (let k = 0; k < T; k++) {
      const { frame, exact } = pick(o.targetOf(plan.timestamps[k]));
      if (!exact) warnings.push(`frame at ${fmt(plan.timestamps[k])} s could not be decoded; repeated the frame at ${fmt(frame.pts)} s`);
      data.set(await frame.image, k * frameBytes); // [T, S, S, 3]: frame k at offset k*S*S*3
      timestamps.push(Math.round(frame.pts * 1e6) / 1e6);
      mask.push(plan.mask[k] && exact);
    }
    const clip: FrameClip = { index: plan.index, start: plan.start, end: plan.end, data, shape: [T, o.size, o.size, 3], timestamps, mask };
    if (o.decodeErrors.length > 0) warnings.push(`${o.decoder} reported decode errors: ${o.decodeErrors.slice(0, 3).join(' | ')}`);
    if (warnings.length > 0) clip.warnings = warnings;
    clips.push(clip);
  }
  return clips;
}
