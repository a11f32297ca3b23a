/** Helpers the tests share (one copy of each idea). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished, TestRunner } from 'vitest';

/**
 * A fresh folder under the OS temp folder (`<prefix>XXXXXX`), removed when its scope ends:
 * called inside a test (or its `beforeEach`), after that test; called at the top level of a
 * file or a `describe`, after that file's or suite's tests, which can share what they leave
 * there (an `afterAll` written later in the file runs before the removal). Not from inside
 * `beforeAll`: vitest has collected the suite's hooks by then, so nothing would remove it.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  if (TestRunner.getCurrentTest()) onTestFinished(remove);
  else afterAll(remove);
  return dir;
}

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

