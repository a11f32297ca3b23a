import type { CAC } from 'cac';
import { FramewiseError, UsageError } from '../errors.js';

/** 2 for usage and configuration errors (bad options, a missing model), 1 otherwise. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof TypeError || error instanceof UsageError) return 2;
  if (error instanceof FramewiseError && (error.code === 'MODEL' || error.code === 'BACKEND' || error.code === 'FFMPEG_NOT_FOUND')) return 2;
  if (error instanceof Error && error.name === 'CACError') return 2;
  return 1;
}

/** A usage error prints the usage and one line; an unexpected error prints its stack. */
export function printError(error: unknown, cli?: CAC): void {
  const usage = exitCodeFor(error) === 2;
  if (usage && cli && !(error instanceof FramewiseError && error.code !== 'USAGE')) cli.outputHelp();
  if (usage || error instanceof FramewiseError) {
    process.stderr.write(`framewise: ${(error as Error).message}\n`);
  } else {
    process.stderr.write(`framewise: unexpected error\n${error instanceof Error ? error.stack : String(error)}\n`);
  }
}
