/**
 * The decoders, one registry: `DECODERS` is the one list, and `createDecoder()` picks from it
 * as engines/index.ts picks engines. Both decoders give the same `ProbeResult` and
 * `FrameClip`s.
 *
 * - `libav`: FFmpeg's libraries in-process through node-av (libav.ts), which decodes only
 *   the packets the plan needs (decode-plan.ts).
 * - `cli`: ffprobe and one ffmpeg process per video (probe.ts, extract.ts).
 * - `auto`: the first that opens, in the table's order; a fallback is said once (debuglog,
 *   and the decoder's `reason`, which runs report).
 *
 * This file is light (the CLI reads it for `--help`): each entry loads its decoder's modules
 * (node-av, sharp) only when it opens.
 */
import { FramewiseError, IngestError } from '../errors.js';
import { Registry, type NameOf } from '../registry.js';
import type { ResolvedExtractOptions } from './extract.js';
import type { ClipPlan, FrameClip, ProbeResult } from './types.js';
import { cli } from './decoders/cli.js';
import { libav } from './decoders/libav.js';

export interface VideoDecoder {
  readonly name: DecoderName;
  /** Why this decoder: what was asked, and for `auto` what happened. */
  readonly reason: string;
  probe(path: string, options: { signal?: AbortSignal; timeoutMs: number }): Promise<ProbeResult>;
  decode(path: string, plans: ClipPlan[], options: ResolvedExtractOptions): Promise<FrameClip[]>;
  /** Frees what the decoder holds beyond a call (a pool of decode workers: decode-pool.ts). */
  close?(): Promise<void>;
}

/** A registry entry: its help text, and how it opens (rejecting when it cannot run here). */
export interface DecoderEntry {
  readonly help: string;
  open(reason: string): Promise<VideoDecoder>;
}

/** The decoders, in the order `auto` tries them. */
export const DECODERS = new Registry('decoder', { libav, cli } satisfies Record<string, DecoderEntry>);

export type DecoderName = NameOf<typeof DECODERS>;
/** The decoder asked for. */
export type DecoderRequest = 'auto' | DecoderName;
/** The decoders that can be asked for: `auto`, then the table's names. */
export function decoderRequests(): readonly DecoderRequest[] {
  return DECODERS.requests();
}

let auto: Promise<VideoDecoder> | undefined;
let autoOff: string | undefined;

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

/** `decoder` with its failures made per-video (asVideoFailure). */
function perVideo(decoder: VideoDecoder): VideoDecoder {
  return {
    name: decoder.name,
    reason: decoder.reason,
    probe: (path, options) =>
      decoder.probe(path, options).catch((error: unknown) => {
        throw asVideoFailure(path, error, options.signal);
      }),
    decode: (path, plans, options) =>
      decoder.decode(path, plans, options).catch((error: unknown) => {
        throw asVideoFailure(path, error, options.signal);
      }),
  };
}

/** The decoder for `request`. A decoder named that cannot open (node-av absent) rejects. */
export async function createDecoder(request: DecoderRequest = 'auto'): Promise<VideoDecoder> {
  if (request !== 'auto') {
    try {
      return perVideo(await DECODERS.get(request).open('asked for'));
    } catch (error) {
      throw new FramewiseError(
        'FFMPEG_NOT_FOUND',
        `The ${request} decoder cannot run here (${(error as Error).message.split('\n')[0]}); use --decoder ${DECODERS.names().find((name) => name !== request) ?? 'auto'}`,
        { cause: error },
      );
    }
  }
  // FRAMEWISE_LIBAV may change between calls (tests): the memo holds for one setting.
  const off = process.env.FRAMEWISE_LIBAV ?? '';
  if (autoOff !== off) auto = undefined;
  autoOff = off;
  auto ??= DECODERS.firstThatLoads(
    async (name, entry, refused) =>
      perVideo(
        await entry.open(refused ? `auto: ${refused}; decoding with ${entry.help}` : `auto: ${name} opened`),
      ),
    { none: (refused) => new FramewiseError('FFMPEG_NOT_FOUND', `No decoder runs here: ${refused}`) },
  );
  return auto;
}
