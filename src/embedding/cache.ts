/**
 * `EmbeddingStore`, and its file implementation, the embedding cache: the frame embeddings
 * of one video under one set of settings, on disk. A key is built from the file's identity (size, mtime and a hash of the first and
 * last 64 KiB), the sampling options (the plan is a pure function of the probe, and the
 * probe of the content, so the options stand for the plan), the frame size and fit, the
 * backbone id and the decoder. Entries are written to a temporary file and renamed, and each ends with a
 * hash of everything before it (the JSON header with the clips' spans, timestamps and masks,
 * and the embeddings), so a torn, corrupt or edited entry is never read: it counts as a miss.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fs.js';
import { statInput } from '../ingest/metadata.js';
import { debug } from '../log.js';
import { FRAMEWISE_VERSION } from '../version.js';

const HEAD_TAIL_BYTES = 64 * 1024;
const MAGIC = Buffer.from('FWE2');
/** In the folder name too: entries of an older layout are misses, never misread. */
const FORMAT_VERSION = 2;
const DIGEST_BYTES = 32;

/** What identifies a file's content cheaply. */
export interface FileIdentity {
  size: number;
  mtimeMs: number;
  /** sha256 of the first and the last 64 KiB. */
  headTail: string;
}

/** Reads a file's identity: two small reads, whatever its size. */
export async function fileIdentity(path: string): Promise<FileIdentity> {
  const info = await statInput(path); // never opens what is not a regular file

  const hash = createHash('sha256');
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(HEAD_TAIL_BYTES, info.size));
    await handle.read(head, 0, head.length, 0);
    hash.update(head);
    if (info.size > HEAD_TAIL_BYTES) {
      const tailLength = Math.min(HEAD_TAIL_BYTES, info.size - HEAD_TAIL_BYTES);
      const tail = Buffer.alloc(tailLength);
      await handle.read(tail, 0, tailLength, info.size - tailLength);
      hash.update(tail);
    }
  } finally {
    await handle.close();
  }
  return { size: info.size, mtimeMs: Math.trunc(info.mtimeMs), headTail: hash.digest('hex') };
}

/** Everything that decides the embeddings of a video. */
export interface CacheKeyParts {
  identity: FileIdentity;
  /** The sampling options, with every default filled in. */
  sampling: unknown;
  size: number;
  fit: string;
  backboneId: string;
  /**
   * The decoder that decodes the frames (`libav` or `cli`; `auto` where a caller did not
   * resolve it). Both promise the same exact frames, but until a parity test over the codecs,
   * containers and samplings proves it, an entry one decoder made is not served to the
   * other: `--decoder cli`, the fallback the docs give, must not be handed the frames of the
   * decoder it replaces.
   */
  decoder: string;
}

/** JSON with sorted keys, so equal objects give equal strings. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hex key of an entry. */
export function cacheKey(parts: CacheKeyParts): string {
  // The framewise version is in the key: a new release may sample or decode differently.
  return createHash('sha256')
    .update(stableStringify({ v: FORMAT_VERSION, framewise: FRAMEWISE_VERSION, ...parts }))
    .digest('hex');
}

/** The clip layout stored beside the embeddings. */
export interface CachedClip {
  index: number;
  start: number;
  end: number;
  timestamps: number[];
  mask: boolean[];
  warnings?: string[];
}

/** One cached video: clips x T frames x D, as float32. */
export interface CachedVideo {
  clips: CachedClip[];
  frames: number;
  dim: number;
  /** float32 [clips, T, D] */
  embeddings: Float32Array;
  /** The backend that computed them. */
  backend?: string;
  /** The decoder that decoded the frames. */
  decoder?: string;
}

/**
 * Where the runners keep frame embeddings by content key: the file cache below on one
 * machine, or any store on shared storage. `get` never throws for a missing or damaged
 * entry (it is a miss), and `set` never throws (a store that cannot write costs speed only).
 */
export interface EmbeddingStore {
  get(key: string): Promise<CachedVideo | undefined>;
  set(key: string, video: CachedVideo): Promise<void>;
}

/** An on-disk cache of frame embeddings per video. */
export class EmbeddingCache implements EmbeddingStore {
  /** Entries read and written in this process. */
  readonly stats = { hits: 0, misses: 0, writes: 0, corrupt: 0 };
  constructor(readonly dir: string) {}

  private file(key: string): string {
    return join(this.dir, 'embeddings', `v${FORMAT_VERSION}`, key.slice(0, 2), `${key}.bin`);
  }

  /** The entry for `key`, or undefined when absent or damaged. */
  async get(key: string): Promise<CachedVideo | undefined> {
    let file: Buffer;
    try {
      file = await readFile(this.file(key));
    } catch {
      this.stats.misses += 1;
      return undefined;
    }
    const entry = decodeEntry(file, key);
    if (!entry) {
      this.stats.corrupt += 1;
      this.stats.misses += 1;
      debug('cache: ignoring a damaged entry %s', key);
      return undefined;
    }
    this.stats.hits += 1;
    return entry;
  }

  /** Stores an entry atomically; a failure to write is logged, never thrown. */
  async set(key: string, video: CachedVideo): Promise<void> {
    const path = this.file(key);
    try {
      await mkdir(join(path, '..'), { recursive: true });
      await writeFileAtomic(path, encodeEntry(key, video));
      this.stats.writes += 1;
    } catch (error) {
      debug('cache: could not write %s: %s', path, (error as Error).message);
    }
  }
}

/** Layout: "FWE2", uint32 LE JSON length, JSON header, float32 LE payload, sha256 of all that. */
export function encodeEntry(key: string, video: CachedVideo): Buffer {
  const payload = Buffer.from(
    video.embeddings.buffer,
    video.embeddings.byteOffset,
    video.embeddings.byteLength,
  );
  const header = Buffer.from(
    JSON.stringify({
      key,
      clips: video.clips,
      frames: video.frames,
      dim: video.dim,
      ...(video.backend ? { backend: video.backend } : {}),
      ...(video.decoder ? { decoder: video.decoder } : {}),
      values: video.embeddings.length,
    }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length, 0);
  const body = Buffer.concat([MAGIC, length, header, payload]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Parses and verifies an entry; undefined when anything is off. */
export function decodeEntry(file: Buffer, key: string): CachedVideo | undefined {
  try {
    if (file.length < 8 + DIGEST_BYTES || !file.subarray(0, 4).equals(MAGIC)) return undefined;
    const body = file.subarray(0, file.length - DIGEST_BYTES);
    // The digest covers the header too: an entry whose spans or timestamps were edited is not served.
    if (!createHash('sha256').update(body).digest().equals(file.subarray(body.length))) return undefined;
    const length = body.readUInt32LE(4);
    if (8 + length > body.length) return undefined;
    const header = JSON.parse(body.subarray(8, 8 + length).toString('utf8')) as {
      key: string;
      clips: CachedClip[];
      frames: number;
      dim: number;
      values: number;
      backend?: string;
      decoder?: string;
    };
    const payload = body.subarray(8 + length);
    if (header.key !== key) return undefined;
    if (payload.length !== header.values * 4) return undefined;
    if (header.values !== header.clips.length * header.frames * header.dim) return undefined;
    const embeddings = new Float32Array(header.values);
    Buffer.from(embeddings.buffer).set(payload); // copy: the payload is not 4-byte aligned
    return {
      clips: header.clips,
      frames: header.frames,
      dim: header.dim,
      embeddings,
      ...(header.backend ? { backend: header.backend } : {}),
      ...(header.decoder ? { decoder: header.decoder } : {}),
    };
  } catch {
    return undefined;
  }
}
