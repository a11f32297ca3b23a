/**
 * The checkpoint of a training run, `checkpoint.bin` in its model folder: after every epoch,
 * the whole `TrainCheckpoint` (weights, Adam's state, the RNG, early stopping, the schedule,
 * finished ensemble members) with the settings and the dataset it was made with, replaced
 * atomically. Layout: the 8 bytes `FWCKPT01`, a uint32 (little-endian) header length, the
 * header (JSON, every Float32Array replaced by `{"$f32": index}`), zero padding to a multiple
 * of 4, then the arrays' float32 values one after another (little-endian).
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import path from 'node:path';
import { ModelError } from '../errors.js';
import { writeFileAtomic } from '../fs.js';
import type { TrainCheckpoint } from './train.js';

export const CHECKPOINT_FILE = 'checkpoint.bin';
const MAGIC = 'FWCKPT01';
/** Typed arrays use the platform's byte order; the file is little-endian. */
const LITTLE_ENDIAN = endianness() === 'LE';
export const CHECKPOINT_SCHEMA = 'framewise.checkpoint/1';

/** What a model folder in training holds: the state, and what it must be resumed with. */
export interface CheckpointContents {
  schema: typeof CHECKPOINT_SCHEMA;
  /** The run's settings, every default filled in: `--resume` must give the same. */
  settings: Record<string, unknown>;
  /** The dataset: a content id, and counts for messages. */
  dataset: { id: string; videos: number; clips: number };
  state: TrainCheckpoint;
}

/** The header JSON and the arrays it points to. */
function encode(value: unknown, arrays: Float32Array[]): unknown {
  if (value instanceof Float32Array) return { $f32: arrays.push(value) - 1 };
  if (Array.isArray(value)) return value.map((v) => encode(v, arrays));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v, arrays)]));
  return value;
}

function decode(value: unknown, arrays: Float32Array[]): unknown {
  if (Array.isArray(value)) return value.map((v) => decode(v, arrays));
  if (value !== null && typeof value === 'object') {
    const index = (value as { $f32?: unknown }).$f32;
    if (typeof index === 'number') return arrays[index];
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v, arrays)]));
  }
  return value;
}

/** The bytes of a checkpoint file. */
export function checkpointBytes(contents: CheckpointContents): Uint8Array {
  const arrays: Float32Array[] = [];
  const header = Buffer.from(
    JSON.stringify({ ...(encode(contents, arrays) as object), lengths: arrays.map((a) => a.length) }),
  );
  const start = Math.ceil((12 + header.length) / 4) * 4;
  const total = start + arrays.reduce((n, a) => n + a.length * 4, 0);
  const out = Buffer.alloc(total);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 12);
  let at = start;
  for (const a of arrays) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    else for (let i = 0; i < a.length; i++) out.writeFloatLE(a[i], at + i * 4);
    at += a.length * 4;
  }
  return out;
}

/** Parses a checkpoint file's bytes; a ModelError when they are not one. */
export function parseCheckpoint(bytes: Uint8Array, file = CHECKPOINT_FILE): CheckpointContents {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC)
    throw new ModelError(`${file} is not a framewise checkpoint`);
  const length = buf.readUInt32LE(8);
  let header: CheckpointContents & { lengths: number[] };
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + length));
  } catch (error) {
    throw new ModelError(`${file}: the checkpoint's header cannot be read (${(error as Error).message})`, {
      cause: error,
    });
  }
  if (header.schema !== CHECKPOINT_SCHEMA || !Array.isArray(header.lengths))
    throw new ModelError(`${file} is not a ${CHECKPOINT_SCHEMA} checkpoint`);
  let at = Math.ceil((12 + length) / 4) * 4;
  const arrays = header.lengths.map((n) => {
    if (at + n * 4 > buf.length) throw new ModelError(`${file} is truncated`);
    const a = new Float32Array(n);
    if (LITTLE_ENDIAN) new Uint8Array(a.buffer).set(buf.subarray(at, at + n * 4));
    else for (let i = 0; i < n; i++) a[i] = buf.readFloatLE(at + i * 4);
    at += n * 4;
    return a;
  });
  const { lengths: _, ...rest } = header;
  return decode(rest, arrays) as CheckpointContents;
}

/** Replaces `dir`'s checkpoint atomically (a reader, or a crash, sees the old one or the new one). */
export async function writeCheckpoint(dir: string, contents: CheckpointContents): Promise<void> {
  await writeFileAtomic(path.join(dir, CHECKPOINT_FILE), checkpointBytes(contents));
}

/** `dir`'s checkpoint, or undefined when it has none. */
export async function readCheckpoint(dir: string): Promise<CheckpointContents | undefined> {
  const file = path.join(dir, CHECKPOINT_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parseCheckpoint(bytes, file);
}
