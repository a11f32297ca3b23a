/** What a failure while probing or decoding one video becomes: that video's record, or the end of the run. */
import { FramewiseError, IngestError } from '../errors.js';

/** Errors that only a bug in framewise's own code throws: they end the run, with their stack. */
const BUGS = [TypeError, ReferenceError, SyntaxError, EvalError, URIError];

/**
 * What a failure while probing or decoding one video is: that video's record, unless it is
 * framewise's own bug or the run's abort. FFmpeg and node-av fail with plain `Error`s (swscale
 * with "Failed to create SwsContext" for a pixel format it cannot convert, such as 4-bit
 * `bgr4`), and a frame too large to allocate with a `RangeError`: each becomes an
 * `IngestError` (`UNSUPPORTED` for what this FFmpeg cannot convert or hold, else `CORRUPT`),
 * so the batch goes on and `--resume` passes the video. A `TypeError` and its kind, or any
 * other `RangeError`, is returned as it is, and the runner ends the run on it.
 */
export function asVideoFailure(path: string, error: unknown, signal?: AbortSignal): unknown {
  if (error instanceof FramewiseError || !(error instanceof Error)) return error;
  if (signal?.aborted && error === signal.reason) return error;
  if (error.name === 'AbortError' || error.name === 'TimeoutError') return error;
  const allocation = /allocat|out of memory|ENOMEM/i.test(error.message);
  if (BUGS.some((kind) => error instanceof kind) || (error instanceof RangeError && !allocation))
    return error;
  const why = error.message.split('\n')[0];
  if (/SwsContext|swscale|pixel format/i.test(why)) return unconvertible(path, why, error);
  if (allocation)
    return new IngestError('UNSUPPORTED', path, `${path}: a frame of it could not be allocated (${why})`, {
      cause: error,
    });
  return new IngestError('CORRUPT', path, `${path}: the decoder failed on it (${why})`, { cause: error });
}

/** A video whose pixel format FFmpeg's scaler cannot convert to RGB: `UNSUPPORTED`, from either decoder. */
export function unconvertible(path: string, why: string, cause?: unknown): IngestError {
  return new IngestError(
    'UNSUPPORTED',
    path,
    `${path}: its frames cannot be converted to RGB by this FFmpeg (${why})`,
    { cause },
  );
}
