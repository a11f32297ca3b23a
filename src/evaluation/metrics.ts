/**
 * Evaluation metrics: pure functions over class indices and probability vectors, no I/O.
 *
 * Conventions (documented in docs/evaluation.md):
 * - Every score is a fraction in [0, 1], never a percentage (MS-TCN prints x100; we do not).
 * - A ratio whose denominator is 0 is **0** (scikit-learn's `zero_division=0`): precision of a
 *   class never predicted, recall of a class that never occurs, F1 when precision + recall is 0,
 *   and precision/recall/F1 of segments when there are none. The one exception is the edit
 *   score of two empty sequences, which is 1 (they are identical).
 * - Macro averages (macro-F1) run over the classes that occur in the truth *or* in the
 *   predictions (scikit-learn's default label set); a class that is in the model but is
 *   neither true nor predicted anywhere does not drag the average down. Mean class accuracy
 *   (balanced accuracy) averages recall over the classes that occur in the truth only.
 * - Weighted-F1 weights each class's F1 by its support (true count).
 * - Ties: the predicted class is the first index with the highest score (as `argmax` in
 *   numpy), and for top-k the true class ranks after every class with a strictly higher score
 *   and after the tied classes with a lower index. So a tie is never counted in the caller's
 *   favour by accident, and the result does not depend on sort stability.
 * - Top-k is reported only when there are more than k classes (otherwise it is always 1).
 * - Log loss clips the probability of the true class to [1e-15, 1] (scikit-learn's eps).
 * - ECE uses equal-width bins over the confidence (the top probability): bin i holds
 *   confidences in (i/B, (i+1)/B], with 0 in the first bin.
 * - Segments (frame mode) are maximal runs of equal labels; a segment covers frame indices
 *   [start, end). The edit score is 1 - Levenshtein(pred segments, true segments) /
 *   max(lengths), averaged over videos; F1@tau sums TP/FP/FN over all videos before computing
 *   F1, and a predicted segment is a TP when its IoU with the best-matching unused true
 *   segment of the same label is >= tau. Both as in the MS-TCN / ASFormer evaluation code.
 *
 * Empty input (no samples at all) is a `TypeError`: there is nothing to measure.
 */
import { invalid, LIMITS, positiveInteger } from '../validate.js';
import { argmax } from './aggregate.js';

/** Precision, recall, F1 and counts for one class. */
export interface ClassScores {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** How many samples truly have this class. */
  support: number;
  /** How many samples were predicted as this class. */
  predicted: number;
}

/** Rows are true classes, columns predicted classes, both in `labels` order. */
export interface ConfusionMatrix {
  labels: string[];
  matrix: number[][];
}

/** One ECE bin: confidences in (lo, hi]. Accuracy and confidence are 0 for an empty bin. */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  accuracy: number;
  confidence: number;
}

/** Metrics of a many-to-one classifier over a set of samples (clips or videos). */
export interface ClipMetrics {
  count: number;
  correct: number;
  top1: number;
  /** `null` when there are k classes or fewer. */
  topK: { k: number; accuracy: number } | null;
  meanClassAccuracy: number;
  macroF1: number;
  weightedF1: number;
  perClass: ClassScores[];
  confusion: ConfusionMatrix;
  logLoss: number;
  ece: number;
  calibration: CalibrationBin[];
}

/** Metrics of a many-to-many (per-frame) tagger over a set of videos. */
export interface FrameMetrics {
  videos: number;
  frames: number;
  correct: number;
  frameAccuracy: number;
  macroF1: number;
  perClass: ClassScores[];
  confusion: ConfusionMatrix;
  /** Mean over videos of the normalised segmental edit score. */
  edit: number;
  /** F1@tau for each overlap threshold, keyed `"0.1"`, `"0.25"`, `"0.5"`. */
  f1At: Record<string, number>;
}

/** One sample for clip metrics: its true class index and a score per class. */
export interface ScoredSample {
  truth: number;
  probs: ArrayLike<number>;
}

/** One video for frame metrics: the true and predicted class index of each sampled frame. */
export interface FrameSequence {
  truth: readonly number[];
  pred: readonly number[];
}

export interface ClipMetricsOptions {
  /** Class names, in the order of the probability vectors. */
  labels: readonly string[];
  /** k for top-k accuracy. @default 5 */
  topK?: number;
  /** Number of equal-width confidence bins for ECE. @default 10 */
  eceBins?: number;
}

export interface FrameMetricsOptions {
  /** Class names, in the order of the class indices. */
  labels: readonly string[];
  /** IoU thresholds for F1@tau. @default [0.1, 0.25, 0.5] */
  overlaps?: readonly number[];
}

const EPS = 1e-15;

/** 0/0 is 0 (see the module comment). */
export function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

/** 0-based rank of class `c`: classes scoring higher, plus tied classes with a lower index. */
export function rankOf(scores: ArrayLike<number>, c: number): number {
  let rank = 0;
  for (let i = 0; i < scores.length; i++) {
    if (scores[i] > scores[c] || (scores[i] === scores[c] && i < c)) rank++;
  }
  return rank;
}

function checkIndex(field: string, value: number, n: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= n)
    throw invalid(field, `a class index in [0, ${n - 1}]`, value);
}

/** Counts of (true, predicted) pairs. */
export function confusionMatrix(
  truth: readonly number[],
  pred: readonly number[],
  labels: readonly string[],
): ConfusionMatrix {
  if (truth.length !== pred.length) throw invalid('pred', `an array of length ${truth.length}`, pred.length);
  const n = labels.length;
  const matrix = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < truth.length; i++) {
    checkIndex(`truth[${i}]`, truth[i], n);
    checkIndex(`pred[${i}]`, pred[i], n);
    matrix[truth[i]][pred[i]]++;
  }
  return { labels: [...labels], matrix };
}

/** Per-class precision, recall, F1, support and predicted count from a confusion matrix. */
export function classScores(confusion: ConfusionMatrix): ClassScores[] {
  const { labels, matrix } = confusion;
  return labels.map((label, c) => {
    const tp = matrix[c][c];
    const support = matrix[c].reduce((a, b) => a + b, 0);
    const predicted = matrix.reduce((a, row) => a + row[c], 0);
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    return {
      label,
      precision,
      recall,
      f1: ratio(2 * precision * recall, precision + recall),
      support,
      predicted,
    };
  });
}

/** Mean F1 over the classes that are true or predicted at least once. */
export function macroF1(scores: readonly ClassScores[]): number {
  const present = scores.filter((s) => s.support > 0 || s.predicted > 0);
  return ratio(
    present.reduce((a, s) => a + s.f1, 0),
    present.length,
  );
}

/** F1 weighted by support. */
export function weightedF1(scores: readonly ClassScores[]): number {
  const total = scores.reduce((a, s) => a + s.support, 0);
  return ratio(
    scores.reduce((a, s) => a + s.f1 * s.support, 0),
    total,
  );
}

/** Balanced accuracy: mean recall over the classes that occur in the truth. */
export function meanClassAccuracy(scores: readonly ClassScores[]): number {
  const present = scores.filter((s) => s.support > 0);
  return ratio(
    present.reduce((a, s) => a + s.recall, 0),
    present.length,
  );
}

/** Fraction of samples whose true class ranks among the top k (ties as in `rankOf`). */
export function topKAccuracy(samples: readonly ScoredSample[], k: number): number {
  positiveInteger('k', k);
  return ratio(samples.filter((s) => rankOf(s.probs, s.truth) < k).length, samples.length);
}

/** Mean negative log probability of the true class, clipped to [1e-15, 1]. */
export function logLoss(samples: readonly ScoredSample[]): number {
  let sum = 0;
  for (const s of samples) sum -= Math.log(Math.min(1, Math.max(EPS, s.probs[s.truth])));
  return ratio(sum, samples.length);
}

/**
 * Bin b holds (b/B, (b+1)/B], with 0 in bin 0. The edges are compared as b/B, not via
 * ceil(c*B): 0.3*10 is 3.0000000000000004 in floating point, and 0.3 belongs to bin 2.
 */
function binOf(c: number, bins: number): number {
  let b = Math.min(bins - 1, Math.max(0, Math.ceil(c * bins) - 1));
  while (b > 0 && c <= b / bins) b--;
  while (b < bins - 1 && c > (b + 1) / bins) b++;
  return b;
}

/** Reliability bins and expected calibration error over the top probability. */
export function calibration(
  samples: readonly ScoredSample[],
  bins = 10,
): { ece: number; bins: CalibrationBin[] } {
  positiveInteger('eceBins', bins);
  const acc = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  const count = new Array<number>(bins).fill(0);
  for (const s of samples) {
    const p = argmax(s.probs);
    const c = s.probs[p];
    const b = binOf(c, bins);
    count[b]++;
    conf[b] += c;
    if (p === s.truth) acc[b]++;
  }
  let ece = 0;
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    const a = ratio(acc[b], count[b]);
    const c = ratio(conf[b], count[b]);
    ece += ratio(count[b], samples.length) * Math.abs(a - c);
    out.push({ lo: b / bins, hi: (b + 1) / bins, count: count[b], accuracy: a, confidence: c });
  }
  return { ece, bins: out };
}

/** All many-to-one metrics for a set of scored samples. */
export function clipMetrics(samples: readonly ScoredSample[], options: ClipMetricsOptions): ClipMetrics {
  const labels = options.labels;
  const k = positiveInteger('topK', options.topK ?? 5, LIMITS.topK);
  if (labels.length === 0) throw invalid('labels', 'at least one label', labels);
  if (samples.length === 0) throw invalid('samples', 'at least one sample', samples);
  samples.forEach((s, i) => {
    checkIndex(`samples[${i}].truth`, s.truth, labels.length);
    if (s.probs.length !== labels.length)
      throw invalid(`samples[${i}].probs.length`, `${labels.length}`, s.probs.length);
  });
  const pred = samples.map((s) => argmax(s.probs));
  const truth = samples.map((s) => s.truth);
  const confusion = confusionMatrix(truth, pred, labels);
  const perClass = classScores(confusion);
  const correct = pred.filter((p, i) => p === truth[i]).length;
  const cal = calibration(samples, options.eceBins ?? 10);
  return {
    count: samples.length,
    correct,
    top1: ratio(correct, samples.length),
    topK: labels.length > k ? { k, accuracy: topKAccuracy(samples, k) } : null,
    meanClassAccuracy: meanClassAccuracy(perClass),
    macroF1: macroF1(perClass),
    weightedF1: weightedF1(perClass),
    perClass,
    confusion,
    logLoss: logLoss(samples),
    ece: cal.ece,
    calibration: cal.bins,
  };
}

/** A maximal run of one label over frame indices [start, end). */
export interface LabelRun<T> {
  label: T;
  start: number;
  end: number;
}

/** Maximal runs of equal labels. */
export function segmentsOf<T>(labels: readonly T[]): LabelRun<T>[] {
  const out: LabelRun<T>[] = [];
  for (let i = 0; i < labels.length; i++) {
    const last = out[out.length - 1];
    if (last && last.label === labels[i]) last.end = i + 1;
    else out.push({ label: labels[i], start: i, end: i + 1 });
  }
  return out;
}

/** Levenshtein distance (unit costs) between two sequences. */
export function levenshtein<T>(a: readonly T[], b: readonly T[]): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = a[i - 1] === b[j - 1] ? prev[j - 1] : 1 + Math.min(prev[j], row[j - 1], prev[j - 1]);
    }
    prev = row;
  }
  return prev[b.length];
}

/** 1 - Levenshtein(segment labels) / max(segment counts); 1 for two empty sequences. */
export function editScore<T>(pred: readonly T[], truth: readonly T[]): number {
  const p = segmentsOf(pred).map((s) => s.label);
  const t = segmentsOf(truth).map((s) => s.label);
  const longest = Math.max(p.length, t.length);
  return longest === 0 ? 1 : 1 - levenshtein(p, t) / longest;
}

/**
 * Segment matches at one IoU threshold. Each predicted segment, in order, is matched to the
 * true segment of the same label with the highest IoU (the first on ties); it is a TP when
 * that IoU >= `overlap` and the true segment is not already matched, otherwise an FP.
 * Unmatched true segments are FNs.
 */
export function segmentMatches<T>(
  pred: readonly T[],
  truth: readonly T[],
  overlap: number,
): { tp: number; fp: number; fn: number } {
  const p = segmentsOf(pred);
  const t = segmentsOf(truth);
  const hit = new Array<boolean>(t.length).fill(false);
  let tp = 0;
  let fp = 0;
  for (const s of p) {
    let best = -1;
    let bestIoU = -Infinity;
    for (let j = 0; j < t.length; j++) {
      if (t[j].label !== s.label) continue;
      const inter = Math.min(s.end, t[j].end) - Math.max(s.start, t[j].start);
      const union = Math.max(s.end, t[j].end) - Math.min(s.start, t[j].start);
      const iou = inter / union;
      if (iou > bestIoU) {
        bestIoU = iou;
        best = j;
      }
    }
    if (best >= 0 && bestIoU >= overlap && !hit[best]) {
      tp++;
      hit[best] = true;
    } else fp++;
  }
  return { tp, fp, fn: hit.filter((h) => !h).length };
}

/** F1 from summed counts; 0/0 is 0. */
export function f1FromCounts(c: { tp: number; fp: number; fn: number }): number {
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  return ratio(2 * precision * recall, precision + recall);
}

/** All many-to-many metrics over a set of videos. */
export function frameMetrics(videos: readonly FrameSequence[], options: FrameMetricsOptions): FrameMetrics {
  const labels = options.labels;
  const overlaps = options.overlaps ?? [0.1, 0.25, 0.5];
  if (labels.length === 0) throw invalid('labels', 'at least one label', labels);
  if (videos.length === 0) throw invalid('videos', 'at least one video', videos);
  const truth: number[] = [];
  const pred: number[] = [];
  let edit = 0;
  const counts = overlaps.map(() => ({ tp: 0, fp: 0, fn: 0 }));
  videos.forEach((v, i) => {
    if (v.truth.length !== v.pred.length)
      throw invalid(`videos[${i}].pred.length`, `${v.truth.length}`, v.pred.length);
    truth.push(...v.truth);
    pred.push(...v.pred);
    edit += editScore(v.pred, v.truth);
    overlaps.forEach((o, k) => {
      const m = segmentMatches(v.pred, v.truth, o);
      counts[k].tp += m.tp;
      counts[k].fp += m.fp;
      counts[k].fn += m.fn;
    });
  });
  if (truth.length === 0) throw invalid('videos', 'at least one frame', 0);
  const confusion = confusionMatrix(truth, pred, labels);
  const perClass = classScores(confusion);
  const correct = pred.filter((p, i) => p === truth[i]).length;
  const f1At: Record<string, number> = {};
  overlaps.forEach((o, k) => (f1At[String(o)] = f1FromCounts(counts[k])));
  return {
    videos: videos.length,
    frames: truth.length,
    correct,
    frameAccuracy: ratio(correct, truth.length),
    macroF1: macroF1(perClass),
    perClass,
    confusion,
    edit: edit / videos.length,
    f1At,
  };
}

/** One decision scored for `classify --threshold`: its top probability, and whether its top label is right. */
export interface ScoredDecision {
  score: number;
  correct: boolean;
}

/** What a threshold gives: how much is answered, and how much is right. */
export interface CoveragePoint {
  threshold: number;
  /** The fraction of decisions whose top score is at or above the threshold (the others are `unknown`). */
  coverage: number;
  /** The fraction of all decisions answered right: an `unknown` counts as wrong. */
  accuracy: number;
  /** The fraction right among those answered; null when none is. */
  answeredAccuracy: number | null;
}

/** Coverage and accuracy at `threshold` (a decision is answered when `score >= threshold`). */
export function coverageAt(decisions: readonly ScoredDecision[], threshold: number): CoveragePoint {
  let answered = 0;
  let right = 0;
  for (const d of decisions) {
    if (d.score < threshold) continue;
    answered++;
    if (d.correct) right++;
  }
  return {
    threshold,
    coverage: ratio(answered, decisions.length),
    accuracy: ratio(right, decisions.length),
    answeredAccuracy: answered > 0 ? right / answered : null,
  };
}

/** The thresholds `eval --thresholds` prints when given no list. */
export const DEFAULT_THRESHOLDS = [0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99] as const;

/** One class's precision-recall curve, one-vs-rest: the class's probability ranks the samples. */
export interface PrCurve {
  label: string;
  /** Samples of the class. */
  positives: number;
  /** Average precision: the sum over recall steps of (R_n - R_{n-1}) P_n; null without positives. */
  ap: number | null;
  /** (recall, precision) after each distinct score, highest score first. */
  points: Array<{ recall: number; precision: number }>;
}

/** Precision-recall per class (in `labels` order); samples with equal scores enter together. */
export function precisionRecall(samples: readonly ScoredSample[], labels: readonly string[]): PrCurve[] {
  return labels.map((label, c) => {
    const ranked = samples
      .map((s) => ({ score: s.probs[c], positive: s.truth === c }))
      .sort((a, b) => b.score - a.score);
    const positives = ranked.filter((r) => r.positive).length;
    const points: PrCurve['points'] = [];
    let tp = 0;
    let fp = 0;
    let ap = 0;
    let lastRecall = 0;
    for (let i = 0; i < ranked.length; i++) {
      if (ranked[i].positive) tp++;
      else fp++;
      if (i + 1 < ranked.length && ranked[i + 1].score === ranked[i].score) continue;
      const recall = ratio(tp, positives);
      const precision = tp / (tp + fp);
      ap += (recall - lastRecall) * precision;
      lastRecall = recall;
      points.push({ recall, precision });
    }
    return { label, positives, ap: positives > 0 ? ap : null, points };
  });
}
