import type { CAC, Command } from 'cac';
import { FramewiseError } from '../errors.js';
import { isOptionError } from '../validate.js';

/** The exit code of an output that could not be written (a full disk, a read-only mount): see `OutputError`. */
export const EXIT_OUTPUT = 3;

/** 2 for usage and configuration errors (bad options, a missing model), 3 for an output that cannot be written, 1 otherwise. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof FramewiseError && error.code === 'OUTPUT') return EXIT_OUTPUT;
  if (isOptionError(error)) return 2;
  if (
    error instanceof FramewiseError &&
    ['USAGE', 'MODEL', 'BACKEND', 'FFMPEG_NOT_FOUND'].includes(error.code)
  )
    return 2;
  if (error instanceof Error && error.name === 'CACError') return 2;
  return 1;
}

/**
 * A usage error prints its one line and where the usage is, on stderr (stdout stays clean
 * for data); a configuration error prints its one line; an unexpected error its stack.
 */
export function printError(error: unknown, cli?: CAC): void {
  const usage =
    isOptionError(error) ||
    (error instanceof Error && error.name === 'CACError') ||
    (error instanceof FramewiseError && error.code === 'USAGE');
  if (usage) {
    const command = cli?.matchedCommand?.name;
    process.stderr.write(
      `framewise: ${asFlags((error as Error).message, cli?.matchedCommand)}\nRun \`framewise ${command ? `${command} ` : ''}--help\` for the usage.\n`,
    );
    return;
  }
  if (exitCodeFor(error) === 2 || error instanceof FramewiseError) {
    process.stderr.write(`framewise: ${asFlags((error as Error).message, cli?.matchedCommand)}\n`);
  } else {
    process.stderr.write(
      `framewise: unexpected error\n${error instanceof Error ? error.stack : String(error)}\n`,
    );
  }
}

/**
 * A library message in the command line's words. The library names its options as a caller
 * writes them in code (`valSplit`, `sampling.frames`, `force: true`); each quoted name that is
 * a flag of `command` becomes that flag (`--val-split`, `--frames`, `--force`). A dotted name
 * is its last part's flag, else its first part's (`head.type` is `--head`).
 */
export function asFlags(message: string, command: Command | undefined): string {
  if (!command) return message;
  const flagOf = (key: string): string | undefined => {
    const option = command.options.find((o) => o.names.includes(key));
    return option?.rawName
      .split(',')
      .map((n) => n.trim().split(/[\s<[]/)[0])
      .find((n) => n.startsWith('--'));
  };
  return message.replace(
    /`([a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*)(?:: ([^`]+))?`/g,
    (quoted, name: string, value: string | undefined) => {
      const parts = name.split('.');
      const flag = flagOf(parts[parts.length - 1]) ?? flagOf(parts[0]);
      if (!flag) return quoted;
      return value === undefined || value === 'true' ? `\`${flag}\`` : `\`${flag} ${value}\``;
    },
  );
}

/** The Levenshtein distance between `a` and `b`: insertions, deletions and substitutions. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
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
