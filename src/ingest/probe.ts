/**
 * probe(): what ffprobe says about a video, as a `ProbeResult`, or an `IngestError` with a
 * stable code:
 *
 * - `ENOENT`       the path does not exist;
 * - `NOT_A_FILE`   a FIFO, socket or device: never opened (an open of a FIFO blocks forever);
 * - `EISDIR`       a folder (a manifest row that names one);
 * - `EACCES`       a file or folder this process may not read;
 * - `BAD_NAME`     a name that is not valid UTF-8, as a folder walk lists it: no path opens it;
 * - `EMPTY_FILE`   zero bytes;
 * - `NOT_A_VIDEO`  no video stream (audio-only, a text or image-less file ffprobe does not know);
 * - `CORRUPT`      a file that looks like a video container but ffprobe cannot read it;
 * - `UNSUPPORTED`  a video stream whose codec this ffmpeg does not know;
 * - `NETWORK`      a URL whose server cannot be reached (refused, unknown host, unreachable).
 *
 * A raw elementary stream (`.h264`) has no duration in any header: its frames are listed
 * (demuxed, not decoded) and the duration follows from them.
 */
import { checkSignal, invalid, isPlainObject, nonEmptyString, positiveNumber } from '../validate.js';
import { decoderFor, type DecoderRequest, type VideoDecoder } from './decoders.js';
import type { ProbeResult } from './types.js';

export interface ProbeOptions {
  signal?: AbortSignal;
  /** Who probes: `libav` in-process, `cli` ffprobe, `auto` libav when it loads, or a decoder already resolved. @default 'auto' */
  decoder?: DecoderRequest | VideoDecoder;
  /** Kill ffprobe after this many milliseconds. @default 30000 */
  timeoutMs?: number;
}

/** Probes one video file. See the module comment for the error codes. */
export async function probe(path: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  nonEmptyString('path', path);
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const signal = checkSignal('options.signal', options.signal);
  const timeoutMs =
    options.timeoutMs === undefined ? 30_000 : positiveNumber('options.timeoutMs', options.timeoutMs);
  const decoder = await decoderFor('options.decoder', options.decoder);
  const video = await decoder.open(path, { signal, timeoutMs });
  await video.close();
  return video.metadata;
}
