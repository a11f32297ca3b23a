/**
 * The data that travels between ingest stages. Times are in seconds, on the stream's own
 * presentation timeline (the first frame is usually at 0).
 */

/** What `probe()` learns about one video file. */
export interface ProbeResult {
  path: string;
  /** File size in bytes and modification time, for cache keys. */
  size: number;
  mtimeMs: number;
  /** Duration of the video stream in seconds. */
  duration: number;
  /** Presentation time of the first frame, in seconds. */
  startTime: number;
  /** `avg_frame_rate`: frames over duration. */
  avgFrameRate: number;
  /** `r_frame_rate`: the nominal (container) frame rate. */
  nominalFrameRate: number;
  frameCount: number;
  /** True when `frameCount` comes from the stream header, false when estimated from duration x fps. */
  frameCountExact: boolean;
  /** Size as coded in the stream, before rotation. */
  codedWidth: number;
  codedHeight: number;
  /** Clockwise rotation in degrees to apply for display: 0, 90, 180 or 270. */
  rotation: number;
  /** Size as displayed (and as ffmpeg decodes it): after rotation. */
  width: number;
  height: number;
  codec: string;
  pixelFormat: string;
  hasAudio: boolean;
  /** The container as ffprobe names it, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `mpegts`. */
  formatName?: string;
}

/** One planned clip: T timestamps, and which of them are real frames. */
export interface ClipPlan {
  index: number;
  /** The span the clip covers, in seconds. */
  start: number;
  end: number;
  /** T planned timestamps, in seconds, non-decreasing. */
  timestamps: number[];
  /** T flags: false for a frame repeated to pad a video shorter than T frames. */
  mask: boolean[];
}

/** How to choose clips and frames: the samplers' registry in `sampling.ts` defines it. */
export type { Sampling } from './sampling.js';

/**
 * How a frame is fitted to the size x size square, declared once (as sharp declares its own
 * `fit` values); each value is its help text.
 */
export const FITS = {
  cover: 'fill the square and crop the centre',
  contain: 'fit inside and pad with black',
} as const;
export type Fit = keyof typeof FITS;
/** The fits, in order (the first is the default). */
export const FIT_NAMES = Object.keys(FITS) as Fit[];

/** The decoded, resized frames of one clip. */
export interface FrameClip {
  index: number;
  start: number;
  end: number;
  /** RGB bytes, row-major, shaped `shape`. */
  data: Uint8Array;
  /** [T, H, W, 3] */
  shape: [number, number, number, 3];
  /** The actual presentation time of each decoded frame, in seconds. */
  timestamps: number[];
  mask: boolean[];
  /** Set when the file was damaged and some frames had to be repeated or dropped. */
  warnings?: string[];
  /** The decoder that gave the frames (`libav` hands a raw elementary stream to `cli`). */
  decoder?: string;
}

/** One labelled span of a video, in seconds (from a JSONL manifest). */
export interface Segment {
  start: number;
  end: number;
  label: string;
}

/** One video found by `discover()`, with what its dataset says about it. */
export interface VideoEntry {
  /** The path as given, joined to the manifest's folder for manifest rows. */
  path: string;
  /** From a manifest's `label`, or the class folder (`root/<label>/<video>`). */
  label?: string;
  /** Per-frame labels, from a JSONL manifest's `segments`. */
  segments?: Segment[];
  /** A span of the video to use, from a CSV manifest's `start`/`end` columns. */
  start?: number;
  end?: number;
}
