/** Helpers the tests share (one copy of each idea). */

/** The index of the largest value in each row of `probs`, a row-major [rows, classes] array. */
export function argmaxRows(probs: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < probs.length / classes; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
    out.push(best);
  }
  return out;
}
