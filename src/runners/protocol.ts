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
import { isUrl } from '../ingest/ffmpeg.js';
import type { Fit, Sampling } from '../ingest/types.js';

/** The BullMQ job name of an embedding job. */
export const JOB_NAME = 'embed';
/** Bumped when job data or results change shape; workers refuse other versions. */
export const PROTOCOL_VERSION = 1;
/** BullMQ's failure reason for a job whose workers died more than `maxStalledCount` times. */
export const STALLED_REASON = 'job stalled more than allowable limit';

/** The settings that decide a video's embeddings; they travel with the job. */
export interface JobSettings {
  sampling: Sampling;
  size: number;
  fit: Fit;
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
  | { v: number; host: string; video: { clips: CachedClip[]; frames: number; dim: number; embeddings: string; cached: boolean; backend?: string; decoder?: string } }
  | { v: number; host: string; error: { code: RecordErrorCode; message: string } };

/** The job id of one video under one set of settings (BullMQ ids may not hold ':' or be integers). */
export function jobId(identity: FileIdentity | { path: string }, item: EmbedItem, settings: JobSettings, backboneId: string): string {
  const { timeoutMs: _timeout, ...deciding } = settings; // a timeout does not change the embeddings
  const span = { start: item.start, end: item.end };
  const hash = createHash('sha256').update(stableStringify({ v: PROTOCOL_VERSION, identity, span, settings: deciding, backboneId })).digest('hex');
  return `fw-${hash.slice(0, 40)}`;
}

/** The job data of one item; a relative path travels resolved (workers run elsewhere), a URL as it is. */
export function jobData(item: EmbedItem, settings: JobSettings, backboneId: string): JobData {
  const travelling: EmbedItem = { path: isUrl(item.path) ? item.path : resolve(item.path), ...(item.start !== undefined ? { start: item.start } : {}), ...(item.end !== undefined ? { end: item.end } : {}) };
  return { v: PROTOCOL_VERSION, item: travelling, settings, backboneId };
}

/** A worker's result for the frames or error record its local runner gave. */
export function encodeResult(host: string, outcome: VideoFrames | ErrorRecord): JobResult {
  if ('error' in outcome) return { v: PROTOCOL_VERSION, host, error: outcome.error };
  const { clips, frames, dim, embeddings, cached, backend, decoder } = outcome;
  const bytes = Buffer.from(embeddings.buffer, embeddings.byteOffset, embeddings.byteLength);
  return { v: PROTOCOL_VERSION, host, video: { clips, frames, dim, embeddings: bytes.toString('base64'), cached, ...(backend ? { backend } : {}), ...(decoder ? { decoder } : {}) } };
}

/** What a coordinator makes of a job's return value; a result it cannot read is a `QueueError`. */
export function decodeResult(path: string, value: unknown): { host: string; outcome: VideoFrames | ErrorRecord } {
  const result = value as Partial<JobResult> | null;
  if (!result || typeof result !== 'object' || result.v !== PROTOCOL_VERSION || typeof result.host !== 'string') {
    throw new QueueError(`A worker returned a result this framewise cannot read for ${path} (protocol ${String(result?.v)}, expected ${PROTOCOL_VERSION}); run the same framewise version everywhere`);
  }
  if ('error' in result && result.error) return { host: result.host, outcome: { path, error: result.error } };
  const video = 'video' in result ? result.video : undefined;
  if (!video || typeof video.embeddings !== 'string') throw new QueueError(`A worker on ${result.host} returned a malformed result for ${path}`);
  const bytes = Buffer.from(video.embeddings, 'base64');
  const expected = video.clips.length * video.frames * video.dim * 4;
  if (bytes.byteLength !== expected) {
    throw new QueueError(`A worker on ${result.host} returned ${bytes.byteLength} bytes of embeddings for ${path}, expected ${expected}`);
  }
  // Copy out: a Buffer's offset into its pool need not be 4-aligned.
  const embeddings = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(embeddings.buffer).set(bytes);
  return {
    host: result.host,
    outcome: { path, clips: video.clips, frames: video.frames, dim: video.dim, embeddings, cached: video.cached, ...(video.backend ? { backend: video.backend } : {}), ...(video.decoder ? { decoder: video.decoder } : {}) },
  };
}

export { redactUrl } from './options.js';
