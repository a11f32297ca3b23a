/**
 * Crash-safe, owned outputs: JSONL, CSV and subtitle files, and the folders of one file per
 * video (`embed`'s npy, `classify`'s vtt and srt).
 *
 * - Every record becomes one line that reaches the file in a single `write` on a descriptor
 *   opened for appending, so a `kill -9` leaves only complete lines, except possibly one torn
 *   last line, which `resume` cuts off before appending. A write that fails (a full disk) is
 *   cut back to the last whole line and becomes an `OutputError`.
 * - The unit of work is an input item, a (path, start, end) span: `resume` reports the spans
 *   already present, so a run can skip them: no duplicates, no losses.
 * - framewise touches only what it wrote: an existing output is resumed or replaced only when
 *   its settings file `<out>.settings.json` says `"schema": "framewise.output/1"` and its
 *   first line is one of framewise's records (an empty file counts as framewise's).
 * - Every check runs at `open*()`, before the run's work; the file itself is opened (and an
 *   old one emptied) only when the first record is written. A run holds `<out>.lock`.
 */
import { constants } from 'node:fs';
import {
  access,
  mkdir,
  open,
  readFile,
  realpath,
  rm,
  stat,
  truncate,
  type FileHandle,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { OutputError, UsageError } from '../errors.js';
import { stableStringify } from '../embedding/cache.js';
import {
  checkOutputDir,
  csvRow,
  lockOutput,
  moveIntoPlace,
  OUTPUT_DIRS,
  OUTPUT_SCHEMA,
  removeStaleTemps,
  saysOwn,
  tempSibling,
  writeFileAtomic,
  type OutputLock,
} from '../fs.js';
import { isUrl } from '../ingest/open-policy.js';
import { debug } from '../log.js';

/** How an output treats a file that already exists. */
export interface OutputOpenOptions {
  /**
   * Append to an existing output and report the spans it already holds.
   * @default false
   */
  resume?: boolean;
  /**
   * Replace an existing output that framewise wrote. Without `resume` or `force`, an existing output is a `UsageError`.
   * @default false
   */
  force?: boolean;
  /**
   * What shapes the records (frames, size, fit, sampling, backbone, model): kept beside the
   * output as `<path>.settings.json`, with the schema that marks the output as framewise's.
   * `resume` with other settings than the output was made with is a `UsageError` naming
   * the difference, and the output is not touched, so one file never mixes records of two kinds.
   */
  settings?: Record<string, unknown>;
  /**
   * The run's inputs (videos, folders, manifests): an output that is one of them is refused.
   * @default none
   */
  inputs?: readonly string[];
}

/** One unit of work: a path, and for a manifest row, its span. */
export interface Unit {
  path: string;
  start?: number;
  end?: number;
}

/** What was found in an existing output when resuming. */
export interface ResumeState {
  /** The units (`unitKey`) already in the output. */
  done: Set<string>;
  /** Number of complete records found. */
  records: number;
  /** Bytes of a torn last line, cut off when the first new record is written. */
  truncatedBytes: number;
}

/** A writer of whole lines. `-` writes to stdout. */
export interface LineSink {
  readonly path: string;
  writeLine(line: string): Promise<void>;
  /** Closes the output and gives back its lock. */
  close(): Promise<void>;
}

/** A folder output of one file per video and their `index.jsonl` (the npy folder of `embed`, the subtitle folder of `classify`). */
export interface FolderSink extends LineSink {
  /** Writes one `.npy` (atomically) into the folder. */
  writeFile(name: string, bytes: Uint8Array): Promise<void>;
}

/** The key of a unit: its absolute path (a URL as it is) and its span. */
export function unitKey(unit: Unit): string {
  return JSON.stringify([
    isUrl(unit.path) ? unit.path : resolve(unit.path),
    unit.start ?? null,
    unit.end ?? null,
  ]);
}

/** True when `unit` is in a resume set. */
export function isDone(done: ReadonlySet<string>, unit: Unit): boolean {
  return done.has(unitKey(unit));
}

const NO_RESUME: ResumeState = { done: new Set(), records: 0, truncatedBytes: 0 };

/** The file beside an output that holds the settings its records were made with. */
export function settingsFileFor(path: string): string {
  return `${path}.settings.json`;
}

/** An `OutputError` for a failed write, or `error` itself when it is not about writing. */
function writeFailure(path: string, error: unknown, resumable = true): unknown {
  return (
    OutputError.from(path === '-' ? 'stdout' : path, error, { resumable: resumable && path !== '-' }) ?? error
  );
}

/**
 * The complete lines of `path` (a file that does not exist reads as empty), and the byte
 * length `keep` they end at; a torn last line is not cut here. With `quoted` (CSV), a line
 * ends only at a newline outside double quotes: a path may hold a newline inside its quotes.
 */
export async function readCompleteLines(
  path: string,
  quoted = false,
): Promise<{ text: string; keep: number; truncatedBytes: number }> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', keep: 0, truncatedBytes: 0 };
    throw error;
  }
  const keep = (quoted ? lastNewlineOutsideQuotes(buffer) : buffer.lastIndexOf(0x0a)) + 1;
  return { text: buffer.subarray(0, keep).toString('utf8'), keep, truncatedBytes: buffer.length - keep };
}

/** The index of the last `\n` outside double quotes (CSV escapes a quote as `""`, so the count's parity says inside or not), or -1. */
function lastNewlineOutsideQuotes(buffer: Buffer): number {
  let inside = false;
  let last = -1;
  for (let i = 0; i < buffer.length; i++) {
    if (buffer[i] === 0x22) inside = !inside;
    else if (buffer[i] === 0x0a && !inside) last = i;
  }
  return last;
}

/** The units of the complete JSONL records in `text`; a line that does not parse is ignored. */
export function jsonlUnits(text: string): Unit[] {
  const units: Unit[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      if (typeof record.path === 'string') units.push(unitOf(record));
    } catch {
      debug('output: ignoring a line that is not JSON');
    }
  }
  return units;
}

function unitOf(record: Record<string, unknown>): Unit {
  const span = (v: unknown): number | undefined =>
    typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : undefined;
  const start = span(record.start);
  const end = span(record.end);
  return {
    path: record.path as string,
    ...(start !== undefined ? { start } : {}),
    ...(end !== undefined ? { end } : {}),
  };
}

function stateOf(units: Unit[], truncatedBytes: number): ResumeState {
  return { done: new Set(units.map(unitKey)), records: units.length, truncatedBytes };
}

/** The kinds of line output: how a record line looks, and how the records are read back. */
interface LineFormat {
  /** True when `line` (the first complete one) is a record framewise writes in this format. */
  ours(line: string): boolean;
  units(text: string): Unit[];
  /** A CSV's header row, written first. */
  header?: string;
}

const JSONL: LineFormat = {
  ours(line) {
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      return typeof record === 'object' && record !== null && typeof record.path === 'string';
    } catch {
      return false;
    }
  },
  units: jsonlUnits,
};

function csvFormat(header: readonly string[]): LineFormat {
  const row = csvRow(header);
  return {
    header: row,
    ours: (line) => line === row,
    units(text) {
      const rows = parseCsv(text, {
        columns: true,
        skip_empty_lines: true,
        relax_column_count: true,
      }) as Array<Record<string, string>>;
      // A frame model's CSV has a row per segment: its unit's span is in span_start, span_end.
      const spanOf = (r: Record<string, string>): Record<string, unknown> =>
        'span_start' in r ? { path: r.path, start: r.span_start, end: r.span_end } : r;
      return rows.filter((r) => typeof r.path === 'string').map((r) => unitOf(spanOf(r)));
    },
  };
}

/** Refuses an output that is one of the run's inputs (compared by real path). */
async function checkNotAnInput(out: string, inputs: readonly string[] = []): Promise<void> {
  const real = async (p: string): Promise<string> => realpath(p).catch(() => resolve(p));
  const target = await real(out);
  for (const input of inputs) {
    if (isUrl(input)) continue;
    if ((await real(input)) === target)
      throw new UsageError(
        `\`--out ${out}\` is one of the inputs (${input}); it would be overwritten. Choose another --out. Nothing was touched.`,
      );
  }
}

/** What is at an output path: nothing, a device or pipe, an empty file, or a file framewise wrote. */
type LineState = 'absent' | 'device' | 'empty' | 'own';

async function lineState(path: string, format: LineFormat, options: OutputOpenOptions): Promise<LineState> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new UsageError(`Cannot write the output ${path}: ${(error as Error).message}`);
  }
  if (info.isDirectory()) throw new UsageError(`Output ${path} is a folder; --out needs a file here`);
  const state: LineState = !info.isFile() ? 'device' : info.size === 0 ? 'empty' : 'own';
  // A device or pipe (/dev/null) holds no output to lose: it is written to as it is.
  if (state === 'device') {
    if (options.resume) throw new UsageError(`\`--resume\` needs a regular file; ${path} is not one`);
    return state;
  }
  if (!options.resume && !options.force)
    throw new UsageError(
      `Output ${path} already exists; pass --resume to continue it or --force to overwrite it`,
    );
  if (state === 'own') {
    const first = (await readCompleteLines(path)).text.split('\n', 1)[0];
    const marked = await saysOwn(settingsFileFor(path), 'schema', OUTPUT_SCHEMA);
    if (!marked || (first !== '' && !format.ours(first))) {
      const why = !marked
        ? `there is no ${basename(settingsFileFor(path))} saying "schema": "${OUTPUT_SCHEMA}" beside it (an output of an earlier framewise has none either: move it away or delete it)`
        : 'its lines are not framewise records';
      throw new UsageError(
        `Cannot ${options.resume ? 'resume' : 'replace'} ${path}: it is not an output that framewise wrote; ${why}. --resume and --force touch only those. Nothing was touched.`,
      );
    }
  }
  return state;
}

/**
 * Compares `settings` with those the output at `path` was made with; throws `UsageError`
 * naming the differences. Reads only.
 */
async function checkSettings(path: string, settings: Record<string, unknown>): Promise<void> {
  const file = settingsFileFor(path);
  let before: Record<string, unknown>;
  try {
    const { schema: _schema, ...rest } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    before = rest;
  } catch (error) {
    throw new UsageError(`Cannot read ${file}, the settings of ${path}: ${(error as Error).message}`);
  }
  const keys = [...new Set([...Object.keys(before), ...Object.keys(settings)])].sort();
  const show = (v: unknown): string => (v === undefined ? 'none' : stableStringify(v));
  const differ = keys.filter(
    (k) => stableStringify(before[k] ?? null) !== stableStringify(settings[k] ?? null),
  );
  if (differ.length > 0) {
    const list = differ
      .map((k) => `${k} ${show(settings[k])} (the output has ${show(before[k])})`)
      .join('; ');
    throw new UsageError(
      `Cannot resume ${path} with other settings than it was made with: ${list}. Run with the same settings, or write a new output. Nothing was touched.`,
    );
  }
}

/** Writes whole lines to a file opened on the first line (see `start`), and cuts a failed write back. */
class FileSink implements LineSink {
  private opening?: Promise<FileHandle>;
  private size = 0;
  constructor(
    readonly path: string,
    private readonly start: () => Promise<{ handle: FileHandle; size: number }>,
    private readonly finish: (started: boolean) => Promise<void>,
    private readonly regular: boolean,
  ) {}
  private handle(): Promise<FileHandle> {
    this.opening ??= this.start().then(({ handle, size }) => {
      this.size = size;
      return handle;
    });
    return this.opening;
  }
  async writeLine(line: string): Promise<void> {
    const buffer = Buffer.from(line.endsWith('\n') ? line : `${line}\n`, 'utf8');
    let handle: FileHandle;
    try {
      handle = await this.handle();
    } catch (error) {
      throw writeFailure(this.path, error, this.regular);
    }
    // One write per line; loop only if the kernel takes less than the whole buffer.
    let offset = 0;
    try {
      while (offset < buffer.length) {
        const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
        offset += bytesWritten;
      }
    } catch (error) {
      // Whole lines only: what reached the file of this line is cut off again.
      if (this.regular && offset > 0) await handle.truncate(this.size).catch(() => undefined);
      throw writeFailure(this.path, error, this.regular);
    }
    this.size += buffer.length;
  }
  async close(): Promise<void> {
    try {
      if (this.opening) {
        const handle = await this.opening.catch(() => undefined);
        if (handle) {
          try {
            if (this.regular) await handle.sync();
          } catch (error) {
            throw writeFailure(this.path, error, this.regular);
          } finally {
            await handle.close();
          }
        }
      }
      await this.finish(this.opening !== undefined);
    } catch (error) {
      throw writeFailure(this.path, error, this.regular);
    }
  }
}

/** Writes to stdout; a CSV's `header` goes out with the first line, as in a file. */
class StdoutSink implements LineSink {
  readonly path = '-';
  constructor(private header = '') {}
  writeLine(line: string): Promise<void> {
    const text = `${this.header ? `${this.header}\n` : ''}${line.endsWith('\n') ? line : `${line}\n`}`;
    this.header = '';
    return new Promise((done, fail) => {
      process.stdout.write(text, (error) => (error ? fail(writeFailure('-', error)) : done()));
    });
  }
  async close(): Promise<void> {}
}

/** How a line sink opens its file on the first line. */
interface LineTarget {
  /** Append after the `keep` bytes of complete lines (cutting a torn tail), else empty the file. */
  appending: boolean;
  keep: number;
  /** A regular file: synced, cut back on a failed write, with a settings file. */
  regular: boolean;
  /** Made (with its parents) before the file is opened. */
  folder?: string;
  /** Given back when the sink closes. */
  lock?: OutputLock;
}

/** A sink that opens `path` with its first line, as `target` says; see `openLines`. */
function lineSink(
  path: string,
  format: LineFormat,
  settings: Record<string, unknown> | undefined,
  target: LineTarget,
): FileSink {
  const { appending, keep, regular, folder, lock } = target;
  const start = async (): Promise<{ handle: FileHandle; size: number }> => {
    if (folder) await mkdir(folder, { recursive: true });
    if (appending)
      await truncate(path, keep).catch((error: NodeJS.ErrnoException) =>
        error.code === 'ENOENT' ? undefined : Promise.reject(error),
      );
    const handle = await open(path, appending ? 'a' : 'w');
    // The settings file follows the emptied output, so a crash between leaves an empty output (framewise's by rule).
    if (regular && !appending)
      await writeFileAtomic(
        settingsFileFor(path),
        `${JSON.stringify({ schema: OUTPUT_SCHEMA, ...settings }, null, 2)}\n`,
      );
    // A CSV's header goes out with the first record, so a run that writes nothing leaves the old file.
    const header = format.header && keep === 0 ? `${format.header}\n` : '';
    if (header) await handle.write(header);
    return { handle, size: keep + Buffer.byteLength(header) };
  };
  return new FileSink(path, start, async () => lock?.release(), regular);
}

/**
 * Checks an output file and prepares its sink: the checks (flags, not an input, ownership,
 * settings, writable) and the lock come now; the file is opened, an old one emptied or a
 * torn last line cut, and the settings file written, when the first line is written.
 */
async function openLines(
  path: string,
  format: LineFormat,
  options: OutputOpenOptions,
): Promise<{ sink: LineSink; resume: ResumeState }> {
  if (path === '-') {
    if (options.resume) throw new UsageError('`--resume` needs an output file, not stdout (`--out -`)');
    return { sink: new StdoutSink(format.header), resume: NO_RESUME };
  }
  if (options.resume && options.force) throw new UsageError('`--resume` and `--force` conflict: choose one');
  await checkNotAnInput(path, options.inputs);
  const state = await lineState(path, format, options);
  try {
    await access(state === 'absent' ? dirname(resolve(path)) : path, constants.W_OK);
  } catch (error) {
    throw new UsageError(`Cannot write the output ${path}: ${(error as Error).message}`);
  }
  const appending = options.resume === true && state === 'own';
  const { resume, keep } = appending
    ? await resumeState(path, format, options.settings)
    : { resume: NO_RESUME, keep: 0 };
  // A device (/dev/null) or pipe gets no settings file and no lock, and is never resumed.
  const regular = state !== 'device';
  const lock = regular ? await lockOutput(path) : undefined;
  return { sink: lineSink(path, format, options.settings, { appending, keep, regular, lock }), resume };
}

/** What an output of framewise's already holds, once its settings are checked against `settings`. */
async function resumeState(
  path: string,
  format: LineFormat,
  settings?: Record<string, unknown>,
): Promise<{ resume: ResumeState; keep: number }> {
  if (settings) await checkSettings(path, settings);
  const read = await readCompleteLines(path, format.header !== undefined /* a CSV quotes */);
  let units: Unit[];
  try {
    units = format.units(read.text);
  } catch (error) {
    throw new UsageError(
      `Cannot resume ${path}: its rows do not read back (${(error as Error).message}); --force replaces it. Nothing was touched.`,
    );
  }
  return { resume: stateOf(units, read.truncatedBytes), keep: read.keep };
}

/**
 * Opens a JSONL output. With `resume`, returns the units already written; with `force`,
 * replaces an output framewise wrote.
 */
export function openJsonl(
  path: string,
  options: OutputOpenOptions = {},
): Promise<{ sink: LineSink; resume: ResumeState }> {
  return openLines(path, JSONL, options);
}

/**
 * Opens a CSV output whose first columns are `path` (and `start`, `end` for a span). A new
 * (or forced) file gets `header`; with `resume`, the rows already written are read back.
 */
export function openCsv(
  path: string,
  header: readonly string[],
  options: OutputOpenOptions = {},
): Promise<{ sink: LineSink; resume: ResumeState }> {
  return openLines(path, csvFormat(header), options);
}

/**
 * Opens a subtitle file (WebVTT, SRT) that holds one video's cues, checked and owned as the
 * other line outputs are; `header` (`WEBVTT`) goes first, and `first` recognises the first
 * line framewise writes. It is written whole by one run, so there is no `resume`.
 */
export function openSubtitleFile(
  path: string,
  first: RegExp,
  header: string | undefined,
  options: OutputOpenOptions = {},
): Promise<{ sink: LineSink; resume: ResumeState }> {
  if (options.resume)
    throw new UsageError(
      `\`--resume\` does not apply to ${path}, a file of one video: run again with --force`,
    );
  return openLines(path, { header, ours: (line) => first.test(line), units: () => [] }, options);
}

/**
 * Opens a folder of one file per video and their `index.jsonl` (the npy folder of `embed`,
 * the subtitle folder of `classify`): an existing one is continued (`resume`) or replaced
 * (`force`) only when framewise wrote it (its `index.jsonl.settings.json` says so). A
 * replacement is written into a sibling folder that takes the old one's place when the
 * sink closes, so a crash leaves the old folder whole; a run holds `<dir>.lock`.
 */
export async function openFolder(
  dir: string,
  options: OutputOpenOptions = {},
): Promise<{ sink: FolderSink; resume: ResumeState }> {
  if (options.resume && options.force) throw new UsageError('`--resume` and `--force` conflict: choose one');
  await checkNotAnInput(dir, options.inputs);
  const target = resolve(dir);
  const lock = await checkOutputDir(dir, OUTPUT_DIRS.npy, { force: options.force || options.resume });
  try {
    const index = join(target, 'index.jsonl');
    const own = await saysOwn(
      join(target, OUTPUT_DIRS.npy.marker),
      OUTPUT_DIRS.npy.field,
      OUTPUT_DIRS.npy.value,
    );
    const appending = options.resume === true && own;
    const { resume, keep } = appending
      ? await resumeState(index, JSONL, options.settings)
      : { resume: NO_RESUME, keep: 0 };
    // Replaced: the new folder is filled beside the old one. Otherwise it is written in place.
    const replace = own && !options.resume;
    const folder = replace ? tempSibling(target) : target;
    await removeStaleTemps(target);
    const lines = lineSink(join(folder, 'index.jsonl'), JSONL, options.settings, {
      appending,
      keep,
      regular: true,
      folder,
    });
    const finish = async (started: boolean): Promise<void> => {
      try {
        await lines.close();
        if (!replace) return;
        if (!started) {
          await rm(folder, { recursive: true, force: true });
          return;
        }
        await moveIntoPlace(folder, target, true);
      } finally {
        await lock.release();
      }
    };
    let started = false;
    const sink: FolderSink = {
      path: index,
      async writeLine(line) {
        started = true;
        await lines.writeLine(line);
      },
      async writeFile(name, bytes) {
        started = true;
        await mkdir(folder, { recursive: true });
        try {
          await writeFileAtomic(join(folder, name), bytes);
        } catch (error) {
          throw writeFailure(join(folder, name), error);
        }
      },
      close: () => finish(started),
    };
    return { sink, resume };
  } catch (error) {
    await lock.release();
    throw error;
  }
}
