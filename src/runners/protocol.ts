/**
 * What travels between a coordinator (`RemoteRunner`) and `framewise worker` over the BullMQ
 * queue: job data, job ids, results. Pure functions, no Redis, so both sides and the tests
 * share one definition.
 *
 * - A job is one video (or manifest span) with the settings that decide its embeddings and
 *   the backbone id the coordinator expects. Its id is a hash of the file's identity (read on
 *   the coordinator; the path when the coordinator cannot read it), the span, the settings
 *   and the backbone id, so enqueuing the same work twice does not do it twice.
 * - A result is the job's return value: the clip layout and the float32 [clips, T, D]
 *   embeddings as base64 (exact, and 4/3 of the raw size), or an error record. The
 *   coordinator removes the job once it has written the result, so Redis holds only the
 *   results in flight.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { QueueError, type RecordErrorCode } from '../errors.js';
import { stableStringify, type CachedClip, type FileIdentity } from '../embedding/cache.js';
import type { EmbedItem, ErrorRecord, VideoFrames } from '../embedding/runner.js';
import { engineOf } from '../engines/index.js';
import { isUrl } from '../ingest/open-policy.js';
import type { SeekMode } from '../ingest/decode-plan.js';
import { validateSampling } from '../ingest/sampling.js';
import { FIT_NAMES, type Fit, type Sampling } from '../ingest/types.js';
import { isPlainObject } from '../validate.js';

/** The BullMQ job name of an embedding job. */
export const JOB_NAME = 'embed';
/** Bumped when job data or results change shape; workers refuse other versions (2: jobs carry `seek`). */
export const PROTOCOL_VERSION = 2;
/** The largest job data a worker parses, by default: a job is a path and its settings, well under 1 KiB. */
export const DEFAULT_MAX_JOB_BYTES = 64 * 1024;
/** Paths and URLs longer than this are refused (PATH_MAX on Linux). */
const MAX_PATH_CHARS = 4096;
/** BullMQ's failure reason for a job whose workers died more than `maxStalledCount` times. */
export const STALLED_REASON = 'job stalled more than allowable limit';

/** The settings that decide a video's embeddings; they travel with the job. */
export interface JobSettings {
  sampling: Sampling;
  size: number;
  fit: Fit;
  /** How frames are sought: part of the job id and of the worker's cache key, as in a local run. */
  seek: SeekMode;
  /** The per-video decode timeout, when the coordinator set one. */
  timeoutMs?: number;
}

export interface JobData {
  v: number;
  item: EmbedItem;
  settings: JobSettings;
  /** The backbone the coordinator expects; a worker running another one refuses the job. */
  backboneId: string;
}

/** A job's return value. */
export type JobResult =
  | {
      v: number;
      host: string;
      video: {
        clips: CachedClip[];
        frames: number;
        dim: number;
        embeddings: string;
        cached: boolean;
        /** The engine that ran the backbone (`onnx` or `tfjs`). */
        engine?: string;
        /** The tfjs backend, when tfjs ran it (a worker before `engine` put the engine here). */
        backend?: string;
        decoder?: string;
      };
    }
  | { v: number; host: string; error: { code: RecordErrorCode; message: string } };

/** The job id of one video under one set of settings (BullMQ ids may not hold ':' or be integers). */
export function jobId(
  identity: FileIdentity | { path: string },
  item: EmbedItem,
  settings: JobSettings,
  backboneId: string,
): string {
  const { timeoutMs: _timeout, ...deciding } = settings; // a timeout does not change the embeddings
  const span = { start: item.start, end: item.end };
  const hash = createHash('sha256')
    .update(stableStringify({ v: PROTOCOL_VERSION, identity, span, settings: deciding, backboneId }))
    .digest('hex');
  return `fw-${hash.slice(0, 40)}`;
}

/** The job data of one item; a relative path travels resolved (workers run elsewhere), a URL as it is. */
export function jobData(item: EmbedItem, settings: JobSettings, backboneId: string): JobData {
  const travelling: EmbedItem = {
    path: isUrl(item.path) ? item.path : resolve(item.path),
    ...(item.start !== undefined ? { start: item.start } : {}),
    ...(item.end !== undefined ? { end: item.end } : {}),
  };
  return { v: PROTOCOL_VERSION, item: travelling, settings, backboneId };
}

/**
 * The job data of a job read from Redis, checked field by field (anyone who can write to the
 * queue can enqueue one), or a short reason why it is not a job this protocol knows. The
 * protocol version and backbone are the worker's to compare.
 */
export function checkJobData(value: unknown): JobData | string {
  if (!isPlainObject(value)) return 'its data is not an object';
  if (value.v !== PROTOCOL_VERSION)
    return `it is job protocol ${typeof value.v === 'number' ? value.v : 'unknown'}, this worker speaks ${PROTOCOL_VERSION}`;
  const { item, settings, backboneId } = value;
  if (!isPlainObject(item)) return 'item is not an object';
  if (typeof item.path !== 'string' || item.path.length === 0 || item.path.length > MAX_PATH_CHARS)
    return `item.path is not a path or URL of at most ${MAX_PATH_CHARS} characters`;
  if (item.path.includes('\0')) return 'item.path holds a NUL character';
  for (const key of ['start', 'end'] as const) {
    if (
      item[key] !== undefined &&
      (typeof item[key] !== 'number' || !Number.isFinite(item[key]) || item[key] < 0)
    )
      return `item.${key} is not a non-negative number`;
  }
  if (typeof backboneId !== 'string' || backboneId.length === 0 || backboneId.length > 200)
    return 'backboneId is not a string';
  if (!isPlainObject(settings)) return 'settings is not an object';
  if (!Number.isInteger(settings.size) || (settings.size as number) <= 0)
    return 'settings.size is not a positive integer';
  if (!FIT_NAMES.includes(settings.fit as Fit)) return `settings.fit is not one of ${FIT_NAMES.join(', ')}`;
  if (settings.seek !== 'exact' && settings.seek !== 'keyframe')
    return 'settings.seek is not exact or keyframe';
  if (
    settings.timeoutMs !== undefined &&
    (!Number.isInteger(settings.timeoutMs) || (settings.timeoutMs as number) <= 0)
  )
    return 'settings.timeoutMs is not a positive integer';
  let sampling: Sampling;
  try {
    sampling = validateSampling(settings.sampling, 'settings.sampling');
  } catch (error) {
    return (error as Error).message.slice(0, 200);
  }
  const span = {
    ...(item.start !== undefined ? { start: item.start as number } : {}),
    ...(item.end !== undefined ? { end: item.end as number } : {}),
  };
  const checked: JobSettings = {
    sampling,
    size: settings.size as number,
    fit: settings.fit as Fit,
    seek: settings.seek,
    ...(settings.timeoutMs !== undefined ? { timeoutMs: settings.timeoutMs as number } : {}),
  };
  return { v: PROTOCOL_VERSION, item: { path: item.path, ...span }, settings: checked, backboneId };
}

/** A worker's result for the frames or error record its local runner gave. */
export function encodeResult(host: string, outcome: VideoFrames | ErrorRecord): JobResult {
  if ('error' in outcome) return { v: PROTOCOL_VERSION, host, error: outcome.error };
  const { clips, frames, dim, embeddings, cached, backend, decoder } = outcome;
  const bytes = Buffer.from(embeddings.buffer, embeddings.byteOffset, embeddings.byteLength);
  return {
    v: PROTOCOL_VERSION,
    host,
    video: {
      clips,
      frames,
      dim,
      embeddings: bytes.toString('base64'),
      cached,
      ...engineOf(backend),
      ...(decoder ? { decoder } : {}),
    },
  };
}

/** What a coordinator makes of a job's return value; a result it cannot read is a `QueueError`. */
export function decodeResult(
  path: string,
  value: unknown,
): { host: string; outcome: VideoFrames | ErrorRecord } {
  const result = value as Partial<JobResult> | null;
  if (
    !result ||
    typeof result !== 'object' ||
    result.v !== PROTOCOL_VERSION ||
    typeof result.host !== 'string'
  ) {
    throw new QueueError(
      `A worker returned a result this framewise cannot read for ${path} (protocol ${String(result?.v)}, expected ${PROTOCOL_VERSION}); run the same framewise version everywhere`,
    );
  }
  if ('error' in result && result.error) return { host: result.host, outcome: { path, error: result.error } };
  const video = 'video' in result ? result.video : undefined;
  if (!video || typeof video.embeddings !== 'string')
    throw new QueueError(`A worker on ${result.host} returned a malformed result for ${path}`);
  const bytes = Buffer.from(video.embeddings, 'base64');
  const expected = video.clips.length * video.frames * video.dim * 4;
  if (bytes.byteLength !== expected) {
    throw new QueueError(
      `A worker on ${result.host} returned ${bytes.byteLength} bytes of embeddings for ${path}, expected ${expected}`,
    );
  }
  // Copy out: a Buffer's offset into its pool need not be 4-aligned.
  const embeddings = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(embeddings.buffer).set(bytes);
  return {
    host: result.host,
    outcome: {
      path,
      clips: video.clips,
      frames: video.frames,
      dim: video.dim,
      embeddings,
      cached: video.cached,
      // What ran, as the store keeps it: the tfjs backend, else the engine (a worker before
      // `engine` sent either one as `backend`).
      ...(video.backend || video.engine ? { backend: video.backend ?? video.engine } : {}),
      ...(video.decoder ? { decoder: video.decoder } : {}),
    },
  };
}

export { redactUrl } from './options.js';
