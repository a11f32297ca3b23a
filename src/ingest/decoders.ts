/**
 * The decoders, one registry: `DECODERS` is the one list, and `createDecoder()` picks from it
 * as engines/index.ts picks engines. Both decoders give the same `ProbeResult` and
 * `FrameClip`s.
 *
 * - `libav`: FFmpeg's libraries in-process through node-av (decoders/libav/), which decodes only
 *   the packets the plan needs (decode-plan.ts).
 * - `cli`: ffprobe and one ffmpeg process per video (decoders/cli/).
 * - `auto`: the first that opens, in the table's order; a fallback is said once (debuglog,
 *   and the decoder's `reason`, which runs report).
 *
 * This file is light (the CLI reads it for `--help`): each entry loads its decoder's modules
 * (node-av, sharp) only when it opens.
 */
import { FramewiseError } from '../errors.js';
import { Registry, type NameOf } from '../registry.js';
import { oneOf } from '../validate.js';
import type { ResolvedExtractOptions } from './extract.js';
import type { ClipPlan, FrameClip, ProbeResult } from './types.js';
import { cli } from './decoders/cli/index.js';
import { libav } from './decoders/libav/index.js';
import { asVideoFailure } from './failures.js';

export { asVideoFailure, unconvertible } from './failures.js';

/** How a video is opened. */
export interface OpenOptions {
  signal?: AbortSignal;
  /** Bounds reading the metadata (ffprobe, or libav's open). */
  timeoutMs: number;
  /** The video's metadata when the caller already has it: then nothing is read at open. @default undefined */
  probe?: ProbeResult;
}

/** How an open video's planned frames are decoded: the extraction options, less the decoder and metadata. */
export type DecodeOptions = Omit<ResolvedExtractOptions, 'probe'>;

/**
 * One video opened by a decoder (TorchCodec's `VideoDecoder`): its metadata, read once when
 * it opened, and its planned frames, decoded in one call or in parts. Close it once done.
 */
export interface OpenVideo {
  readonly path: string;
  /** What the probe says: the same from either decoder. */
  readonly metadata: ProbeResult;
  decode(plans: ClipPlan[], options: DecodeOptions): Promise<FrameClip[]>;
  close(): Promise<void>;
}

/** A decoder, resolved once (`createDecoder()`) and handed down: it opens videos. */
export interface VideoDecoder {
  readonly name: DecoderName;
  /** Why this decoder: what was asked, and for `auto` what happened. */
  readonly reason: string;
  /** Opens one video; rejects with its `IngestError` (ENOENT, NOT_A_VIDEO, CORRUPT, ...). */
  open(path: string, options: OpenOptions): Promise<OpenVideo>;
  /** Frees what the decoder holds beyond a video (a pool of decode workers: decode-pool.ts). */
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

/** `decoder` with its failures made per-video (asVideoFailure). */
function perVideo(decoder: VideoDecoder): VideoDecoder {
  return {
    name: decoder.name,
    reason: decoder.reason,
    async open(path, options) {
      const video = await decoder.open(path, options).catch((error: unknown) => {
        throw asVideoFailure(path, error, options.signal);
      });
      return {
        path: video.path,
        metadata: video.metadata,
        decode: (plans, o) =>
          video.decode(plans, o).catch((error: unknown) => {
            throw asVideoFailure(path, error, o.signal);
          }),
        close: () => video.close(),
      };
    },
  };
}

/** Whether `value` is a decoder object (createDecoder(), pooledDecoder()) rather than a name. */
export function isDecoder(value: unknown): value is VideoDecoder {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as VideoDecoder).open === 'function' &&
    typeof (value as VideoDecoder).name === 'string'
  );
}

/** The decoder `value` names, or `value` itself when it is one already: resolved at the boundary, once. */
export async function decoderFor(
  field: string,
  value: DecoderRequest | VideoDecoder | undefined,
): Promise<VideoDecoder> {
  if (isDecoder(value)) return value;
  return createDecoder(value === undefined ? 'auto' : oneOf(field, value, decoderRequests()));
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
