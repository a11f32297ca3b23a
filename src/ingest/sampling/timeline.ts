/**
 * What every sampler shares: the video's timeline, the real frames inside a span, and the
 * padding rule. Pure.
 *
 * Short videos (the padding rule): when a clip's span holds fewer than T frames, the clip
 * takes every real frame in the span at its own timestamp (start + i / fps), then repeats the
 * last one until it has T; `mask[k]` is true for the real frames and false for the repeats.
 * So a one-frame video still gives one full clip of T frames, the first of them real.
 */
import type { ClipPlan } from '../types.js';

/** Float tolerance for "is this frame inside the span", in frames. */
export const EPS = 1e-6;

/** A positive decimal in a CLI form (`2`, `0.5`, `.5`), as a regular expression source. */
export const DECIMAL = '(\\d+(?:\\.\\d+)?|\\.\\d+)';

export interface Timeline {
  /** The video, for messages. */
  path: string;
  /** Time of frame 0. */
  t0: number;
  /** End of the video: t0 + duration. */
  end: number;
  /** Frame rate used to place real frames (average frame rate). */
  fps: number;
  /** The part to sample, [from, to): the whole video, or the sampling's `start`..`end` inside it. */
  from: number;
  to: number;
}

/**
 * One way of choosing clips and frames. The registry in `../sampling.ts` names it; `O` is
 * its options with `frames` (T), without `kind` and without the span (`start`, `end`), which
 * every sampling takes and which arrives as the timeline's [from, to).
 */
export interface Sampler<O extends { frames: number }> {
  /** The CLI form, e.g. `fps:<n>[/<stride>]`: the name, then `:` and the arguments if any. */
  readonly form: string;
  /** What it does, for `--help` and the docs. */
  readonly help: string;
  /** The arguments of the CLI form (after `name:`, undefined for the bare name), or undefined when they do not parse. */
  parse(args: string | undefined, frames: number): O | undefined;
  /** Checks an options object (`value.frames` is already checked, given as `frames`); a TypeError naming `field.x` otherwise. */
  validate(value: Record<string, unknown>, field: string, frames: number): O;
  /** The clips of one video. */
  plan(tl: Timeline, options: O): ClipPlan[];
  /** How many clips `plan` gives, without building them (a plan's cost is checked first). */
  count(tl: Timeline, options: O): number;
  /** Training may draw extra clips as ordered subsets of a larger T (one clip over a fixed span). */
  readonly subsets?: boolean;
}

/** Indices of the real frames whose time lies in [a, b): frame i is at t0 + i / fps. */
export function framesIn(tl: Timeline, a: number, b: number): { first: number; count: number } {
  const first = Math.max(0, Math.ceil((a - tl.t0) * tl.fps - EPS));
  const last = Math.ceil((Math.min(b, tl.end) - tl.t0) * tl.fps - EPS) - 1; // inclusive
  return { first, count: Math.max(0, last - first + 1) };
}

/** Rounds away float noise (1e-9 s) so plans print and compare cleanly. */
export function clean(t: number): number {
  return Math.round(t * 1e9) / 1e9;
}

/** T timestamps in [a, b): centres (or jittered points) of T equal parts, or the padding rule. */
export function placeFrames(
  tl: Timeline,
  a: number,
  b: number,
  T: number,
  rand?: () => number,
): { timestamps: number[]; mask: boolean[] } {
  const { first, count } = framesIn(tl, a, b);
  if (count >= T) {
    const part = (b - a) / T;
    const timestamps = Array.from({ length: T }, (_, k) => clean(a + (k + (rand ? rand() : 0.5)) * part));
    return { timestamps, mask: Array<boolean>(T).fill(true) };
  }
  // Padding rule: every real frame in the span, then the last one repeated.
  const real = Math.max(1, count);
  const lastFrame = Math.max(0, Math.ceil((tl.end - tl.t0) * tl.fps - EPS) - 1);
  const firstFrame = count > 0 ? first : Math.min(first, lastFrame);
  const timestamps: number[] = [];
  const mask: boolean[] = [];
  for (let k = 0; k < T; k++) {
    const i = firstFrame + Math.min(k, real - 1);
    timestamps.push(clean(tl.t0 + i / tl.fps));
    mask.push(k < real);
  }
  return { timestamps, mask };
}
