/**
 * Crash-safe line outputs (JSONL and CSV). Every record becomes one line that reaches the
 * file in a single `write` on a descriptor opened for appending, so a `kill -9` leaves only
 * complete lines, except possibly one torn last line, which `resume` cuts off before
 * appending. `resume` also reports which paths are already present so that a run can skip
 * them: no duplicates, no losses.
 */
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { UsageError } from '../errors.js';
import { stableStringify } from '../embedding/cache.js';
import { csvRow, exists, writeFileAtomic } from '../fs.js';
import { debug } from '../log.js';

/** How an output treats a file that already exists. */
export interface OutputOpenOptions {
  /**
   * Append to an existing file and report the paths it already holds.
   * @default false
   */
  resume?: boolean;
  /**
   * Overwrite an existing file. Without `resume` or `force`, an existing file is a `UsageError`.
   * @default false
   */
  force?: boolean;
  /**
   * What shapes the records (frames, size, fit, sampling, backbone, model): kept beside the
   * output as `<path>.settings.json`. `resume` with other settings than the output was made
   * with is a `UsageError` naming the difference, and the output is not touched, so one
   * file never mixes records of two kinds. An output without the file (made by framewise
   * before 0.2) is resumed as it is.
   */
  settings?: Record<string, unknown>;
}

/** What was found in an existing output when resuming. */
export interface ResumeState {
  /** Paths (as written, and resolved to absolute) already in the output. */
  done: Set<string>;
  /** Number of complete records found. */
  records: number;
  /** Bytes of a torn last line that were cut off. */
  truncatedBytes: number;
}

/** A writer of whole lines. `-` writes to stdout. */
export interface LineSink {
  readonly path: string;
  writeLine(line: string): Promise<void>;
  close(): Promise<void>;
}

/** True when `path` (as given, or resolved) is in a resume set. */
export function isDone(done: ReadonlySet<string>, path: string): boolean {
  return done.has(path) || done.has(resolve(path));
}

class FileSink implements LineSink {
  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}
  async writeLine(line: string): Promise<void> {
    const buffer = Buffer.from(line.endsWith('\n') ? line : `${line}\n`, 'utf8');
    // One write per line; loop only if the kernel takes less than the whole buffer.
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesWritten } = await this.handle.write(buffer, offset, buffer.length - offset);
      offset += bytesWritten;
    }
  }
  async close(): Promise<void> {
    try {
      await this.handle.sync();
    } catch {
      /* some files (pipes, /dev/null) cannot be synced */
    }
    await this.handle.close();
  }
}

class StdoutSink implements LineSink {
  readonly path = '-';
  writeLine(line: string): Promise<void> {
    return new Promise((done, fail) => {
      process.stdout.write(line.endsWith('\n') ? line : `${line}\n`, (error) => (error ? fail(error) : done()));
    });
  }
  async close(): Promise<void> {}
}

/**
 * Cuts a torn last line (no trailing newline) off `path`, and returns the complete text.
 * A file that does not exist reads as empty.
 */
export async function readCompleteLines(path: string): Promise<{ text: string; truncatedBytes: number }> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', truncatedBytes: 0 };
    throw error;
  }
  const lastNewline = buffer.lastIndexOf(0x0a);
  const keep = lastNewline + 1;
  if (keep < buffer.length) {
    debug('output: cutting a torn last line of %d bytes from %s', buffer.length - keep, path);
    await truncate(path, keep);
  }
  return { text: buffer.subarray(0, keep).toString('utf8'), truncatedBytes: buffer.length - keep };
}

/** Paths of the complete JSONL records in `text`; a line that does not parse is ignored. */
export function jsonlPaths(text: string): string[] {
  const paths: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const record = JSON.parse(line) as { path?: unknown };
      if (typeof record.path === 'string') paths.push(record.path);
    } catch {
      debug('output: ignoring a line that is not JSON');
    }
  }
  return paths;
}

function doneSet(paths: string[]): Set<string> {
  const done = new Set<string>();
  for (const p of paths) {
    done.add(p);
    done.add(resolve(p));
  }
  return done;
}

/**
 * Checks an output path before any work starts: it must be writable, and an existing file
 * needs `resume` or `force`. Throws `UsageError`.
 */
export async function checkOutputPath(path: string, options: OutputOpenOptions = {}): Promise<void> {
  if (path === '-') {
    if (options.resume) throw new UsageError('`--resume` needs an output file, not stdout (`--out -`)');
    return;
  }
  if (options.resume && options.force) throw new UsageError('`--resume` and `--force` conflict: choose one');
  if (!options.resume && !options.force && (await exists(path))) {
    throw new UsageError(`Output ${path} already exists; pass --resume to continue it or --force to overwrite it`);
  }
  // Open for appending to prove we can write, without changing the file.
  let handle: FileHandle | undefined;
  try {
    const existed = await exists(path);
    handle = await open(path, 'a');
    await handle.close();
    handle = undefined;
    if (!existed) {
      const { rm } = await import('node:fs/promises');
      await rm(path, { force: true });
    }
  } catch (error) {
    await handle?.close();
    throw new UsageError(`Cannot write the output ${path}: ${(error as Error).message}`);
  }
}

/** The file beside an output that holds the settings its records were made with. */
export function settingsFileFor(path: string): string {
  return `${path}.settings.json`;
}

/**
 * Compares `settings` with those the output at `path` was made with (on resume), or records
 * them (a new output). Throws `UsageError` before the output is touched.
 */
async function reconcileSettings(path: string, options: OutputOpenOptions): Promise<void> {
  if (path === '-' || !options.settings) return;
  const file = settingsFileFor(path);
  if (options.resume && (await exists(path))) {
    let before: Record<string, unknown>;
    try {
      before = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        debug('sinks: %s has no settings file; resumed unchecked', path);
        await writeFileAtomic(file, `${JSON.stringify(options.settings, null, 2)}\n`);
        return;
      }
      throw new UsageError(`Cannot read ${file}, the settings of ${path}: ${(error as Error).message}`);
    }
    const keys = [...new Set([...Object.keys(before), ...Object.keys(options.settings)])].sort();
    const show = (v: unknown): string => (v === undefined ? 'none' : stableStringify(v));
    const differ = keys.filter((k) => stableStringify(before[k] ?? null) !== stableStringify(options.settings![k] ?? null));
    if (differ.length > 0) {
      const list = differ.map((k) => `${k} ${show(options.settings![k])} (the output has ${show(before[k])})`).join('; ');
      throw new UsageError(`Cannot resume ${path} with other settings than it was made with: ${list}. Run with the same settings, or write a new output. Nothing was touched.`);
    }
    return;
  }
  await writeFileAtomic(file, `${JSON.stringify(options.settings, null, 2)}\n`);
}

/**
 * Opens a JSONL output. With `resume`, cuts a torn last line and returns the paths already
 * written; with `force`, empties the file.
 */
export async function openJsonl(path: string, options: OutputOpenOptions = {}): Promise<{ sink: LineSink; resume: ResumeState }> {
  await checkOutputPath(path, options);
  if (path === '-') return { sink: new StdoutSink(), resume: { done: new Set(), records: 0, truncatedBytes: 0 } };
  await reconcileSettings(path, options);
  let state: ResumeState = { done: new Set(), records: 0, truncatedBytes: 0 };
  if (options.resume) {
    const { text, truncatedBytes } = await readCompleteLines(path);
    const paths = jsonlPaths(text);
    state = { done: doneSet(paths), records: paths.length, truncatedBytes };
  }
  const handle = await open(path, options.resume ? 'a' : 'w');
  return { sink: new FileSink(path, handle), resume: state };
}

/**
 * Opens a CSV output whose first column is `path`. A new (or forced) file gets `header`;
 * with `resume`, the rows already written are read back.
 */
export async function openCsv(
  path: string,
  header: string[],
  options: OutputOpenOptions = {},
): Promise<{ sink: LineSink; resume: ResumeState }> {
  await checkOutputPath(path, options);
  if (path === '-') {
    const sink = new StdoutSink();
    await sink.writeLine(csvRow(header));
    return { sink, resume: { done: new Set(), records: 0, truncatedBytes: 0 } };
  }
  await reconcileSettings(path, options);
  let state: ResumeState = { done: new Set(), records: 0, truncatedBytes: 0 };
  let needHeader = true;
  if (options.resume) {
    const { text, truncatedBytes } = await readCompleteLines(path);
    if (text.length > 0) {
      needHeader = false;
      const rows = parseCsv(text, { columns: true, skip_empty_lines: true, relax_column_count: true }) as Array<Record<string, string>>;
      const paths = rows.map((row) => row.path).filter((p): p is string => typeof p === 'string');
      state = { done: doneSet(paths), records: paths.length, truncatedBytes };
    }
  }
  const handle = await open(path, options.resume ? 'a' : 'w');
  const sink = new FileSink(path, handle);
  if (needHeader) await sink.writeLine(csvRow(header));
  return { sink, resume: state };
}
