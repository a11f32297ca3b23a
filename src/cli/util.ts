import type { CAC } from 'cac';
import { FramewiseError } from '../errors.js';
import { isOptionError } from '../validate.js';

/** The exit code of an output that could not be written (a full disk, a read-only mount): see `OutputError`. */
export const EXIT_OUTPUT = 3;

/** 2 for usage and configuration errors (bad options, a missing model), 3 for an output that cannot be written, 1 otherwise. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof FramewiseError && error.code === 'OUTPUT') return EXIT_OUTPUT;
  if (isOptionError(error)) return 2;
  if (error instanceof FramewiseError && ['USAGE', 'MODEL', 'BACKEND', 'FFMPEG_NOT_FOUND'].includes(error.code)) return 2;
  if (error instanceof Error && error.name === 'CACError') return 2;
  return 1;
}

/**
 * A usage error prints its one line and where the usage is, on stderr (stdout stays clean
 * for data); a configuration error prints its one line; an unexpected error its stack.
 */
export function printError(error: unknown, cli?: CAC): void {
  const usage = isOptionError(error) || (error instanceof Error && error.name === 'CACError') || (error instanceof FramewiseError && error.code === 'USAGE');
  if (usage) {
    const command = cli?.matchedCommand?.name;
    process.stderr.write(`framewise: ${(error as Error).message}\nRun \`framewise ${command ? `${command} ` : ''}--help\` for the usage.\n`);
    return;
  }
  if (exitCodeFor(error) === 2 || error instanceof FramewiseError) {
    process.stderr.write(`framewise: ${(error as Error).message}\n`);
  } else {
    process.stderr.write(`framewise: unexpected error\n${error instanceof Error ? error.stack : String(error)}\n`);
  }
}

/** The Levenshtein distance between `a` and `b`: insertions, deletions and substitutions. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a slip (at most 2 edits, or a third of the word). */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** `; did you mean \`x\`?` when a near one exists, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const near = nearest(word, candidates);
  return near === undefined ? '' : `; did you mean \`${near}\`?`;
}
