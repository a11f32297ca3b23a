/**
 * A frame model's timeline: per-frame labels become segments (runs of one label, with start,
 * end and score), the runs shorter than `minSegment` are merged away, and the video-level
 * label is the one covering the most time. `classify` and every output of a frame model
 * (JSONL, CSV, WebVTT, SRT) read these, so they all agree.
 *
 * - A run starts at its first frame's timestamp and ends where the next run starts; the first
 *   run starts at the start of the video (or span), the last ends at its end.
 * - A run's `score` is the mean, over its frames, of the probability of the run's label (for
 *   `unknown`, of each frame's top probability).
 * - `minSegment` merges the shortest run below it into its longer neighbour (the earlier one on
 *   a tie), joins neighbours that now share a label, and repeats: the result does not depend
 *   on the order runs are visited in, and a video of one run keeps it whatever its length. A
 *   run of no time (two frames at one time, from overlapping windows) is always merged.
 */
import { segmentsOf } from './metrics.js';

/** The label of a video or frame whose top score is below `classify --threshold`. */
export const UNKNOWN_LABEL = 'unknown';

/** One segment of a timeline: `[start, end)` in seconds, its label and its score. */
export interface ScoredSegment {
  start: number;
  end: number;
  label: string;
  score: number;
}

/** One tagged frame as the timeline reads it. */
export interface TimelineFrame {
  t: number;
  label: string;
  /** The frame's top probability. */
  score: number;
  /** Class probabilities, in `labels` order. */
  probs: ArrayLike<number>;
}

export interface TimelineOptions {
  /** The model's labels (the order of each frame's `probs`). */
  labels: readonly string[];
  /** Where the first segment starts: the video's (or span's) start, in seconds. */
  start: number;
  /** Where the last segment ends: the video's (or span's) end, in seconds. */
  end: number;
  /** Runs shorter than this (seconds) are merged into a neighbour. @default 0 (none) */
  minSegment?: number;
}

interface Run {
  label: string;
  start: number;
  end: number;
  frames: number[];
}

/** The segments of time-ordered `frames` (see the module comment). No frames give none. */
export function segmentsFromFrames(
  frames: readonly TimelineFrame[],
  options: TimelineOptions,
): ScoredSegment[] {
  if (frames.length === 0) return [];
  const runs: Run[] = segmentsOf(frames.map((f) => f.label)).map((r) => ({
    label: r.label,
    start: frames[r.start].t,
    end: r.end < frames.length ? frames[r.end].t : options.end,
    frames: Array.from({ length: r.end - r.start }, (_, i) => r.start + i),
  }));
  runs[0].start = Math.min(options.start, runs[0].start);
  runs[runs.length - 1].end = Math.max(options.end, runs[runs.length - 1].end);
  // A run of no time (overlapping windows sample one time twice) is always merged away.
  mergeShortRuns(runs, Math.max(options.minSegment ?? 0, Number.EPSILON));
  return runs.map((run) => ({
    start: run.start,
    end: run.end,
    label: run.label,
    score: runScore(run, frames, options.labels),
  }));
}

function mergeShortRuns(runs: Run[], minSegment: number): void {
  while (runs.length > 1) {
    let shortest = -1;
    runs.forEach((run, i) => {
      if (
        run.end - run.start < minSegment &&
        (shortest < 0 || run.end - run.start < runs[shortest].end - runs[shortest].start)
      )
        shortest = i;
    });
    if (shortest < 0) return;
    const before = runs[shortest - 1];
    const after = runs[shortest + 1];
    const into =
      !after || (before && before.end - before.start >= after.end - after.start)
        ? shortest - 1
        : shortest + 1;
    const [lo, hi] = into < shortest ? [into, shortest] : [shortest, into];
    runs.splice(lo, 2, {
      label: runs[into].label,
      start: runs[lo].start,
      end: runs[hi].end,
      frames: [...runs[lo].frames, ...runs[hi].frames],
    });
    // The merged run may now meet a run of its own label.
    for (const j of [lo, lo - 1]) {
      if (j >= 0 && j + 1 < runs.length && runs[j].label === runs[j + 1].label) {
        runs.splice(j, 2, {
          label: runs[j].label,
          start: runs[j].start,
          end: runs[j + 1].end,
          frames: [...runs[j].frames, ...runs[j + 1].frames],
        });
      }
    }
  }
}

function runScore(run: Run, frames: readonly TimelineFrame[], labels: readonly string[]): number {
  const c = labels.indexOf(run.label);
  let sum = 0;
  for (const i of run.frames) sum += c >= 0 ? frames[i].probs[c] : frames[i].score;
  return sum / run.frames.length;
}

/** Each label's share of the timeline's time, largest first (ties: the label seen first). */
export function timeShares(
  segments: ReadonlyArray<{ start: number; end: number; label: string }>,
): Array<{ label: string; score: number }> {
  const total = segments.reduce((s, seg) => s + (seg.end - seg.start), 0);
  const byLabel = new Map<string, number>();
  for (const seg of segments) byLabel.set(seg.label, (byLabel.get(seg.label) ?? 0) + (seg.end - seg.start));
  return [...byLabel.entries()]
    .map(([label, time], i) => ({ label, score: total > 0 ? time / total : 0, i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .map(({ label, score }) => ({ label, score }));
}
