/**
 * File helpers shared by every folder: the one atomic write, the one atomic folder
 * replacement and its up-front check, the one CSV writer and the cache folder's default.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { UsageError } from './errors.js';

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

/** A folder framewise writes whole: a model, a report, a split. `marker` is the file that shows framewise wrote it. */
export interface OwnedDir {
  /** What it is, for messages: `model folder`, `report folder`. */
  what: string;
  /** A file only framewise's folders of this kind hold: `framewise.json`, `metrics.json`. */
  marker: string;
}

/** The folders framewise writes, each with the file that marks it as framewise's. */
export const OUTPUT_DIRS = {
  model: { what: 'model folder', marker: 'framewise.json' },
  report: { what: 'report folder', marker: 'metrics.json' },
  split: { what: 'split folder', marker: 'split.json' },
  npy: { what: 'npy folder', marker: 'index.jsonl' },
  tfjs: { what: 'tfjs model folder', marker: 'model.json' },
} as const satisfies Record<string, OwnedDir>;

/** Whether anything is at `p` (following links). */
export const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/** What is at `dir` for a new folder of `kind`: nothing, an empty folder, one of `kind`'s own, or why it may not be replaced. */
async function dirState(dir: string, kind: OwnedDir): Promise<'absent' | 'empty' | 'own' | { refusal: string }> {
  let info;
  try {
    info = await lstat(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'absent';
    if (code === 'ENOTDIR') return { refusal: `a part of ${dir} is a file, not a folder` };
    throw error;
  }
  if (!info.isDirectory()) return { refusal: `${dir} exists and is not a folder` };
  if ((await readdir(dir)).length === 0) return 'empty';
  if (!(await exists(path.join(dir, kind.marker)))) return { refusal: `${dir} is not a ${kind.what} that framewise wrote (it has no ${kind.marker}); --force replaces only those, or an empty folder` };
  return 'own';
}

/** `dirState` of `dir`, or the `UsageError` that says why it may not be replaced. */
async function replaceableState(dir: string, kind: OwnedDir): Promise<'absent' | 'empty' | 'own'> {
  const state = await dirState(path.resolve(dir), kind);
  if (typeof state === 'object') throw new UsageError(`Cannot write the ${kind.what} ${dir}: ${state.refusal}. Nothing was touched.`);
  return state;
}

/**
 * Checks, before any work, that a folder of `kind` can be written at `dir`: an existing one
 * needs `force` and must be framewise's own (or empty), and the folder it goes in must be
 * writable. Throws `UsageError` naming the problem; touches nothing.
 */
export async function checkOutputDir(dir: string, kind: OwnedDir, options: { force?: boolean } = {}): Promise<void> {
  const target = path.resolve(dir);
  const state = await replaceableState(dir, kind);
  if (state === 'own' && !options.force) throw new UsageError(`Output ${dir} already exists; pass --force to replace it`);
  // The new folder is made beside it and renamed into place: the nearest existing ancestor must be a writable folder.
  let parent = path.dirname(target);
  while (!(await exists(parent)) && path.dirname(parent) !== parent) parent = path.dirname(parent);
  try {
    if (!(await lstat(parent)).isDirectory()) throw new Error(`${parent} is not a folder`);
    await access(parent, constants.W_OK);
  } catch (error) {
    throw new UsageError(`Cannot write the ${kind.what} ${dir}: ${(error as NodeJS.ErrnoException).code === 'EACCES' ? `${parent} is not writable` : (error as Error).message}`);
  }
}

/**
 * Writes a whole folder atomically: `fill` writes into a new sibling folder, which then
 * takes the place of `dir`. A crash or an error leaves the old folder as it was (or none);
 * never half of one. An existing `dir` is replaced only when it is empty or `kind`'s own
 * (else `UsageError`, and nothing is touched).
 */
export async function replaceDir(dir: string, kind: OwnedDir, fill: (tmp: string) => Promise<void>): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true });
  const stem = path.join(parent, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const tmp = `${stem}.tmp`;
  await mkdir(tmp);
  try {
    await fill(tmp);
    if ((await replaceableState(dir, kind)) !== 'absent') {
      const old = `${stem}.old`;
      await rename(target, old);
      try {
        await rename(tmp, target);
      } catch (error) {
        await rename(old, target);
        throw error;
      }
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, target);
    }
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}
