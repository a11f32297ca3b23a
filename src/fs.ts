/**
 * File helpers shared by every folder: the one atomic write, the one CSV writer and the
 * cache folder's default.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';

/**
 * Writes `data` to `file` atomically: a temporary file in the same folder, then a rename, so
 * a reader (or a crash) sees the old file or the new one, never half of one.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * CSV text of `rows`, each ended by `\n`: RFC 4180 quoting where a field holds a comma, a
 * quote or a line break, and where it starts or ends with a space (which readers may trim).
 */
export function csvText(rows: ReadonlyArray<ReadonlyArray<unknown>>): string {
  return stringify(rows as unknown[][], { eof: true, record_delimiter: '\n', quoted_match: /^\s|\s$/, cast: { boolean: (b) => String(b) } });
}

/** One CSV row without its line end. */
export function csvRow(fields: ReadonlyArray<unknown>): string {
  return csvText([fields]).slice(0, -1);
}

/** The cache folder: `FRAMEWISE_CACHE`, else `~/.cache/framewise`. */
export function defaultCacheDir(): string {
  return process.env.FRAMEWISE_CACHE || path.join(os.homedir(), '.cache', 'framewise');
}
