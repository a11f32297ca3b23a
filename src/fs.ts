/**
 * File helpers shared by every folder: the one atomic write, the one atomic folder
 * replacement and its up-front check, the one CSV writer and the cache folder's default.
 */
import { randomBytes } from 'node:crypto';
import { constants, rmSync } from 'node:fs';
import {
  access,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { OutputError, UsageError } from './errors.js';

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
  return stringify(rows as unknown[][], {
    eof: true,
    record_delimiter: '\n',
    quoted_match: /^\s|\s$/,
    cast: { boolean: (b) => String(b) },
  });
}

/** One CSV row without its line end. */
export function csvRow(fields: ReadonlyArray<unknown>): string {
  return csvText([fields]).slice(0, -1);
}

/** The cache folder: `FRAMEWISE_CACHE`, else `~/.cache/framewise`. */
export function defaultCacheDir(): string {
  return process.env.FRAMEWISE_CACHE || path.join(os.homedir(), '.cache', 'framewise');
}

/**
 * A folder framewise writes whole: a model, a report, a split. framewise knows its own by
 * what its marker file says, never by the file's name alone: the JSON `marker` file holds
 * `field: value` (a schema name framewise wrote).
 */
export interface OwnedDir {
  /** What it is, for messages: `model folder`, `report folder`. */
  what: string;
  /** The JSON file that shows framewise wrote the folder: `framewise.json`, `metrics.json`. */
  marker: string;
  /** The marker's field that names its schema, and the value framewise writes there. */
  field: string;
  value: string;
}

/** The schema of a line output's settings file (`<out>.settings.json`), the marker of JSONL and CSV outputs. */
export const OUTPUT_SCHEMA = 'framewise.output/1';

/** The folders framewise writes, each with the marker that shows it is framewise's. */
export const OUTPUT_DIRS = {
  model: { what: 'model folder', marker: 'framewise.json', field: 'format', value: 'framewise-model' },
  report: { what: 'report folder', marker: 'metrics.json', field: 'schema', value: 'framewise.metrics/1' },
  split: { what: 'split folder', marker: 'split.json', field: 'schema', value: 'framewise.split/1' },
  npy: {
    what: 'npy, vtt or srt folder',
    marker: 'index.jsonl.settings.json',
    field: 'schema',
    value: OUTPUT_SCHEMA,
  },
  tfjs: { what: 'tfjs model folder', marker: 'model.json', field: 'format', value: 'layers-model' },
} as const satisfies Record<string, OwnedDir>;

/** Whether the JSON file `file` says, in its `field`, that it is `value` (what framewise wrote). */
export async function saysOwn(file: string, field: string, value: string): Promise<boolean> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    return typeof json === 'object' && json !== null && json[field] === value;
  } catch {
    return false;
  }
}

/** Whether anything is at `p` (following links). */
export const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** What is at `dir` for a new folder of `kind`: nothing, an empty folder, one of `kind`'s own, or why it may not be replaced. */
async function dirState(
  dir: string,
  kind: OwnedDir,
): Promise<'absent' | 'empty' | 'own' | { refusal: string }> {
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
  if (!(await saysOwn(path.join(dir, kind.marker), kind.field, kind.value))) {
    return {
      refusal: `${dir} is not a ${kind.what} that framewise wrote (no ${kind.marker} saying "${kind.field}": "${kind.value}"; a folder written by an earlier framewise has none either: move it away or delete it); \`force: true\` replaces only those, or an empty folder`,
    };
  }
  return 'own';
}

/** `dirState` of `dir`, or the `UsageError` that says why it may not be replaced (a user's folder, a file). */
export async function replaceableState(dir: string, kind: OwnedDir): Promise<'absent' | 'empty' | 'own'> {
  const state = await dirState(path.resolve(dir), kind);
  if (typeof state === 'object')
    throw new UsageError(`Cannot write the ${kind.what} ${dir}: ${state.refusal}. Nothing was touched.`);
  return state;
}

/**
 * Claims, before any work, the folder of `kind` at `dir`: an existing one needs `force` and
 * must be framewise's own (or empty), the folder it goes in must be writable, and no other
 * run may be writing it. Throws `UsageError` naming the problem, having touched nothing;
 * else returns the lock the run holds until it has written the folder.
 */
export async function checkOutputDir(
  dir: string,
  kind: OwnedDir,
  options: { force?: boolean } = {},
): Promise<OutputLock> {
  const target = path.resolve(dir);
  const state = await replaceableState(dir, kind);
  if (state === 'own' && !options.force)
    throw new UsageError(`Output ${dir} already exists; pass \`force: true\` to replace it`);
  // The new folder is made beside it and renamed into place: the nearest existing ancestor must be a writable folder.
  let parent = path.dirname(target);
  while (!(await exists(parent)) && path.dirname(parent) !== parent) parent = path.dirname(parent);
  try {
    if (!(await lstat(parent)).isDirectory()) throw new Error(`${parent} is not a folder`);
    await access(parent, constants.W_OK);
  } catch (error) {
    throw new UsageError(
      `Cannot write the ${kind.what} ${dir}: ${(error as NodeJS.ErrnoException).code === 'EACCES' ? `${parent} is not writable` : (error as Error).message}`,
    );
  }
  // The lock goes beside the folder; folders made for it go again if the run leaves them empty.
  const made = await mkdir(path.dirname(target), { recursive: true });
  const lock = await lockOutput(target);
  if (!made) return lock;
  const release = async (): Promise<void> => {
    await lock.release();
    for (let dir = path.dirname(target); dir.length >= made.length; dir = path.dirname(dir)) {
      if (
        !(await rmdir(dir).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
  };
  return { file: lock.file, release, [Symbol.asyncDispose]: release };
}

/**
 * Writes a whole folder atomically: `fill` writes into a new sibling folder, which then
 * takes the place of `dir`. A crash or an error leaves the old folder as it was (or none);
 * never half of one. An existing `dir` is replaced only when it is empty or `kind`'s own
 * (else `UsageError`, and nothing is touched).
 */
export async function replaceDir(
  dir: string,
  kind: OwnedDir,
  fill: (tmp: string) => Promise<void>,
): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true });
  await removeStaleTemps(target);
  const tmp = tempSibling(target);
  try {
    await mkdir(tmp);
    await fill(tmp);
    await moveIntoPlace(tmp, target, (await replaceableState(dir, kind)) !== 'absent');
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw OutputError.from(dir, error) ?? error;
  }
}

/** A new name beside `target` for the folder that will replace it: `.NAME.PID.HEX.tmp` (see `removeStaleTemps`). */
export function tempSibling(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
}

/**
 * Renames the folder `tmp` (a `tempSibling`) to `target`; an existing
 * `target` (`replace`) is first moved aside to the `.old` sibling, put back if the rename
 * fails, and removed once the new folder is in place.
 */
export async function moveIntoPlace(tmp: string, target: string, replace: boolean): Promise<void> {
  if (!replace) return rename(tmp, target);
  const old = tmp.replace(/\.tmp$/, '.old');
  await rename(target, old);
  try {
    await rename(tmp, target);
  } catch (error) {
    await rename(old, target);
    throw error;
  }
  await rm(old, { recursive: true, force: true });
}

/** Whether process `pid` lives on this machine (a process we may not signal still lives). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Locks this process holds, removed at exit even when it ends by `process.exit`. */
const held = new Set<string>();
process.on('exit', () => {
  for (const file of held) rmSync(file, { force: true });
});

/** A lock on an output, held while a run writes it; `release()` (or `await using`) gives it back. */
export interface OutputLock extends AsyncDisposable {
  readonly file: string;
  release(): Promise<void>;
}

/** The lock file of an output: `<out>.lock` beside it, as git's `index.lock`. */
export function lockFileFor(target: string): string {
  return `${path.resolve(target)}.lock`;
}

/**
 * Takes the lock on the output `target`, as git takes `index.lock`: a `<target>.lock` file
 * created exclusively, holding this process's pid and host. A lock whose process is gone
 * (its pid is dead on this host) is stale and taken over; a live one is a `UsageError`
 * naming the other run.
 */
export async function lockOutput(target: string): Promise<OutputLock> {
  const file = lockFileFor(target);
  const mine = `${JSON.stringify({ pid: process.pid, hostname: os.hostname(), started: new Date().toISOString() })}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, mine, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw OutputError.from(file, error) ?? error;
    }
    let other: { pid?: unknown; hostname?: unknown } = {};
    let text = '';
    try {
      text = await readFile(file, 'utf8');
      other = JSON.parse(text) as typeof other;
    } catch {
      /* torn or vanished: judged below */
    }
    const pid = typeof other.pid === 'number' ? other.pid : undefined;
    const sameHost = other.hostname === os.hostname();
    // A lock without a pid is being written this moment, or was left by a crash between its creation and its write.
    const stale =
      pid !== undefined
        ? sameHost && !pidAlive(pid)
        : await lstat(file).then(
            (info) => Date.now() - info.mtimeMs > 2000,
            () => false,
          );
    if (attempt < 3 && stale) {
      // Stale: move it aside (only one taker's rename succeeds), check it is the one judged stale, then retry.
      const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.stale`;
      try {
        await rename(file, aside);
      } catch {
        continue; // another run took it over first
      }
      const moved = await readFile(aside, 'utf8').catch(() => '');
      if (moved !== text) await link(aside, file).catch(() => undefined); // a fresh lock: put it back, unless another is there now
      await rm(aside, { force: true });
      continue;
    }
    if (attempt < 3 && pid === undefined) {
      await new Promise((r) => setTimeout(r, 50)); // being written this moment
      continue;
    }
    const who =
      pid !== undefined
        ? `pid ${pid}${sameHost ? '' : ` on ${String(other.hostname)}`}`
        : 'an unknown process';
    throw new UsageError(
      `${target} is being written by another framewise run (${who}; lock ${file}). Wait for it to end; if no such run exists, delete the lock.`,
    );
  }
  held.add(file);
  const release = async (): Promise<void> => {
    if (!held.delete(file)) return;
    await rm(file, { force: true });
  };
  return { file, release, [Symbol.asyncDispose]: release };
}

/**
 * Removes what a killed writer left beside `target`: the `.NAME.PID.HEX.tmp` and `.old`
 * folders of `replaceDir` whose process is dead on this host.
 */
export async function removeStaleTemps(target: string): Promise<void> {
  const parent = path.dirname(target);
  const prefix = `.${path.basename(target)}.`;
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)\.[0-9a-f]{8}\.(tmp|old)$/.exec(name.slice(prefix.length));
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1])))
      await rm(path.join(parent, name), { recursive: true, force: true });
  }
}
