/**
 * discover(): from files, folders and dataset manifests to a list of videos.
 *
 * - A file is taken as given (whatever its extension), unless it is a manifest.
 * - A folder is walked recursively for files with a video extension. Hidden files and
 *   folders (a name starting with '.') are skipped; symbolic links are followed, and a
 *   link to a folder that is being walked (by its real path) is not, so link loops end.
 *   Every name is an input, also where links give one file several.
 *   Entries come out sorted by path (code-point order), so runs are repeatable. A video
 *   inside a subfolder gets that first-level subfolder's name as its label
 *   (`root/<label>/.../<video>`), unless `labels: 'none'`.
 * - A manifest is a `.csv` with the header `path,label[,start,end]` or a `.jsonl` whose
 *   lines are `{"path","label"}` or `{"path","segments":[{"start","end","label"}]}`. Paths
 *   are relative to the manifest's folder. Rows keep the manifest's order.
 *
 * Inputs keep their order. A path that does not exist, a folder without videos, or a bad
 * manifest row is a `UsageError`, raised before any video is opened.
 */
import { isUtf8 } from 'node:buffer';
import { access, constants, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { isUrl } from './open-policy.js';
import { dirname, extname, isAbsolute, join, relative, sep } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { UsageError } from '../errors.js';
import { checkSignal, invalid, isPlainObject, oneOf } from '../validate.js';
import { hasUndecodableName } from './metadata.js';
import type { Segment, VideoEntry } from './types.js';

/** Extensions (lower case, with the dot) that a folder walk keeps. */
export const VIDEO_EXTENSIONS: readonly string[] = [
  '.mp4',
  '.m4v',
  '.mov',
  '.mkv',
  '.webm',
  '.avi',
  '.mpg',
  '.mpeg',
  '.ts',
  '.mts',
  '.m2ts',
  '.wmv',
  '.flv',
  '.3gp',
  '.ogv',
  '.y4m',
];

export interface DiscoverOptions {
  signal?: AbortSignal;
  /** Extensions a folder walk keeps (lower case, with the dot). @default VIDEO_EXTENSIONS */
  extensions?: readonly string[];
  /** `folders`: a video in `root/<name>/...` is labelled `<name>`; `none`: no labels from folders. @default 'folders' */
  labels?: 'folders' | 'none';
}

function isManifest(path: string): 'csv' | 'jsonl' | undefined {
  const ext = extname(path).toLowerCase();
  return ext === '.csv' ? 'csv' : ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : undefined;
}

function resolveRow(manifest: string, path: string): string {
  return isAbsolute(path) || isUrl(path) ? path : join(dirname(manifest), path);
}

function finiteSeconds(where: string, field: string, value: unknown): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(
      `${where}: expected a number of seconds >= 0 for \`${field}\` but received ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** A manifest's text; one that cannot be read is a usage error (it is the run's input), not a stack. */
async function readManifest(manifest: string): Promise<string> {
  try {
    return await readFile(manifest, 'utf8');
  } catch (error) {
    throw new UsageError(
      `Cannot read the manifest ${manifest}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

async function readCsv(manifest: string): Promise<VideoEntry[]> {
  const text = await readManifest(manifest);
  let rows: Array<Record<string, string>>;
  try {
    rows = parseCsv(text, {
      columns: (header: string[]) => header.map((h) => h.trim()),
      skip_empty_lines: true,
      trim: true,
      bom: true,
    });
  } catch (error) {
    throw new UsageError(`${manifest}: not a valid CSV manifest (${(error as Error).message})`);
  }
  const header = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/, 1)[0]
    .split(',')
    .map((h) => h.trim());
  if (header[0] !== 'path')
    throw new UsageError(
      `${manifest}: a CSV manifest needs the header \`path,label[,start,end]\`; found \`${header.join(',')}\``,
    );
  return rows.map((row, i) => {
    const where = `${manifest} line ${i + 2}`;
    if (!row.path) throw new UsageError(`${where}: empty \`path\``);
    const entry: VideoEntry = { path: resolveRow(manifest, row.path) };
    if (row.label) entry.label = row.label;
    if (row.start !== undefined && row.start !== '') entry.start = finiteSeconds(where, 'start', row.start);
    if (row.end !== undefined && row.end !== '') entry.end = finiteSeconds(where, 'end', row.end);
    if (entry.start !== undefined && entry.end !== undefined && entry.end <= entry.start) {
      throw new UsageError(`${where}: \`end\` (${entry.end}) must be after \`start\` (${entry.start})`);
    }
    return entry;
  });
}

async function readJsonl(manifest: string): Promise<VideoEntry[]> {
  const lines = (await readManifest(manifest)).replace(/^\uFEFF/, '').split(/\r?\n/);
  const entries: VideoEntry[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${manifest} line ${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new UsageError(`${where}: not JSON (${(error as Error).message})`);
    }
    if (!isPlainObject(row) || typeof row.path !== 'string' || row.path === '')
      throw new UsageError(`${where}: expected an object with a non-empty \`path\``);
    const entry: VideoEntry = { path: resolveRow(manifest, row.path) };
    if (row.label !== undefined) {
      if (typeof row.label !== 'string' || row.label === '')
        throw new UsageError(`${where}: \`label\` must be a non-empty string`);
      entry.label = row.label;
    }
    if (row.start !== undefined) entry.start = finiteSeconds(where, 'start', row.start);
    if (row.end !== undefined) entry.end = finiteSeconds(where, 'end', row.end);
    if (row.segments !== undefined) {
      if (!Array.isArray(row.segments) || row.segments.length === 0)
        throw new UsageError(`${where}: \`segments\` must be a non-empty array`);
      entry.segments = row.segments.map((s: unknown, k: number): Segment => {
        const at = `segments[${k}]`;
        if (!isPlainObject(s) || typeof s.label !== 'string' || s.label === '')
          throw new UsageError(`${where}: \`${at}\` needs start, end and a label`);
        const start = finiteSeconds(where, `${at}.start`, s.start);
        const end = finiteSeconds(where, `${at}.end`, s.end);
        if (end <= start)
          throw new UsageError(`${where}: \`${at}.end\` (${end}) must be after its start (${start})`);
        return { start, end, label: s.label };
      });
    }
    entries.push(entry);
  });
  return entries;
}

interface WalkState {
  /** The real paths of the folders being walked, outermost first: a link back to one of them is a loop. */
  ancestors: Set<string>;
  extensions: Set<string>;
  signal?: AbortSignal;
}

/**
 * Recursively lists video files under `dir`, sorted; follows links, survives loops. Every
 * name is kept, also where links give one file or folder several (a symlink farm of class
 * folders: the label belongs to the name); the cache dedupes the work. Nothing is left out
 * in silence: a folder that cannot be read is listed itself, and a name that is not valid
 * UTF-8 (it has no string path) is listed as its lossy decoding; each becomes that entry's
 * error record (`EACCES`, `BAD_NAME`) when it is probed.
 */
async function walk(dir: string, state: WalkState, out: string[]): Promise<void> {
  state.signal?.throwIfAborted();
  let real: string;
  try {
    real = await realpath(dir);
  } catch {
    return; // a dangling link
  }
  if (state.ancestors.has(real)) return;
  state.ancestors.add(real);
  try {
    await walkFolder(dir, state, out);
  } finally {
    state.ancestors.delete(real);
  }
}

async function walkFolder(dir: string, state: WalkState, out: string[]): Promise<void> {
  let names: Buffer[];
  try {
    await access(dir, constants.R_OK | constants.X_OK);
    names = await readdir(dir, { encoding: 'buffer' });
  } catch {
    out.push(dir);
    return;
  }
  const entries = names
    .map((bytes) => ({ bytes, name: bytes.toString('utf8') }))
    .filter((e) => !e.name.startsWith('.'));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { bytes, name } of entries) {
    const path = join(dir, name);
    let info;
    try {
      info = await stat(Buffer.concat([Buffer.from(`${dir}${sep}`), bytes])); // follows symbolic links
    } catch {
      continue; // dangling link or vanished file
    }
    const video = state.extensions.has(extname(name).toLowerCase());
    if (!isUtf8(bytes)) {
      if (info.isDirectory() || video) out.push(path);
    } else if (info.isDirectory()) await walk(path, state, out);
    // A FIFO, socket or device named like a video is listed too: it becomes a NOT_A_FILE record, not a silent gap.
    else if (video) out.push(path);
  }
}

/** Finds the videos in `inputs`. See the module comment for the rules. */
export async function discover(
  inputs: string | readonly string[],
  options: DiscoverOptions = {},
): Promise<VideoEntry[]> {
  const list = typeof inputs === 'string' ? [inputs] : inputs;
  if (!Array.isArray(list) || list.length === 0)
    throw invalid('inputs', 'a path or a non-empty array of paths', inputs);
  list.forEach((input, i) => {
    if (typeof input !== 'string' || input === '') throw invalid(`inputs[${i}]`, 'a non-empty path', input);
  });
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const signal = checkSignal('options.signal', options.signal);
  const labels =
    options.labels === undefined
      ? 'folders'
      : oneOf('options.labels', options.labels, ['folders', 'none'] as const);
  const extensions = new Set((options.extensions ?? VIDEO_EXTENSIONS).map((e) => e.toLowerCase()));

  const entries: VideoEntry[] = [];
  for (const input of list) {
    signal?.throwIfAborted();
    if (isUrl(input)) {
      // ffmpeg reads it; whether it is there shows when it is probed (an ENOENT record).
      entries.push({ path: input });
      continue;
    }
    let info;
    try {
      info = await stat(input);
    } catch {
      // A name that is not UTF-8 reaches us as its lossy decoding: it is there, as a BAD_NAME record, as in a folder walk.
      if (await hasUndecodableName(input)) {
        entries.push({ path: input });
        continue;
      }
      throw new UsageError(`Input ${input} does not exist`);
    }
    if (info.isDirectory()) {
      const files: string[] = [];
      await walk(input, { ancestors: new Set(), extensions, signal }, files);
      if (files.length === 0)
        throw new UsageError(
          `Input folder ${input} has no video files (extensions: ${[...extensions].join(' ')})`,
        );
      for (const file of files.sort()) {
        const entry: VideoEntry = { path: file };
        const parts = relative(input, file).split(sep);
        if (labels === 'folders' && parts.length > 1) entry.label = parts[0];
        entries.push(entry);
      }
    } else {
      const kind = isManifest(input);
      if (kind) {
        const rows = kind === 'csv' ? await readCsv(input) : await readJsonl(input);
        // A listed video that is missing is not checked here: probe() reports it as one
        // ENOENT record and the batch goes on.
        if (rows.length === 0) throw new UsageError(`Manifest ${input} lists no videos`);
        entries.push(...rows);
      } else {
        entries.push({ path: input });
      }
    }
  }
  return entries;
}
