/**
 * From class scores to a label: the argmax, the top k, and the one clip-to-video
 * aggregation that `classify` and `eval` share. Its scores always sum to 1.
 */
import { invalid } from '../validate.js';

/** How a video's score comes from its clips', declared once: the mean of their probabilities, or the per-class maximum. */
export const AGGREGATES = ['mean', 'max'] as const;
export type Aggregate = (typeof AGGREGATES)[number];

/** Index of the highest score; the first one on ties. */
export function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

export interface LabelScore {
  label: string;
  score: number;
}

/** The k best labels of `probs`, highest first (ties keep label order). */
export function topK(probs: ArrayLike<number>, labels: readonly string[], k: number): LabelScore[] {
  return Array.from(probs, (score, i) => ({ label: labels[i], score, i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, k)
    .map(({ label, score }) => ({ label, score }));
}

/**
 * Scores of a whole from the scores of its parts (clips of a video, frames of a clip), each
 * row a distribution over `classes`: their mean, or the per-class max renormalised to sum to
 * 1, so the result is a distribution either way (log loss stays a log loss; the argmax is
 * that of the raw max). No rows give zeros.
 */
export function aggregateScores(
  rows: ReadonlyArray<ArrayLike<number>>,
  how: Aggregate,
  classes = rows[0]?.length ?? 0,
): Float32Array {
  const out = new Float64Array(classes).fill(how === 'max' ? -Infinity : 0);
  for (const row of rows) {
    if (row.length !== classes) throw invalid('rows[].length', `${classes}`, row.length);
    for (let c = 0; c < classes; c++)
      out[c] = how === 'max' ? Math.max(out[c], row[c]) : out[c] + row[c] / rows.length;
  }
  if (rows.length === 0) out.fill(0);
  else if (how === 'max') {
    const sum = out.reduce((a, b) => a + b, 0);
    if (sum > 0) for (let c = 0; c < classes; c++) out[c] /= sum;
  }
  return Float32Array.from(out);
}
