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
