/**
 * Opening an input for the libav decoder: with the declared demuxers and protocols only
 * (open-policy.ts), stoppable on abort or timeout, and the video stream to decode.
 */
import type { FormatContext, Stream } from 'node-av';
import { FfmpegError, IngestError } from '../../../errors.js';
import { onAbort } from '../../../validate.js';
import { readHead } from '../../metadata.js';
import {
  isAllowedFormat,
  isUrl,
  openOptions,
  refusedFormatError,
  refusedProtocolError,
} from '../../open-policy.js';
import type { Av } from './av.js';

export interface Opened {
  fmt: FormatContext;
  close(): Promise<void>;
}

/**
 * Opens an input for reading; `interrupt()` on abort or timeout stops a blocking open or
 * read. The caller closes it.
 */
export async function openInput(
  av: Av,
  path: string,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  command: string,
): Promise<Opened & { stop(): unknown }> {
  const fmt = new av.FormatContext();
  fmt.allocContext();
  let stopped: unknown;
  const stop = (reason: unknown): void => {
    if (stopped !== undefined) return;
    stopped = reason;
    fmt.interrupt();
  };
  const offAbort = onAbort(signal, () => stop(signal!.reason));
  const timer =
    timeoutMs !== undefined
      ? setTimeout(
          () =>
            stop(
              new FfmpegError({ command, exitCode: null, signal: null, stderr: '', timeoutMs }, 'TIMEOUT'),
            ),
          timeoutMs,
        )
      : undefined;
  timer?.unref?.();
  let opened = false;
  const close = async (): Promise<void> => {
    offAbort();
    if (timer) clearTimeout(timer);
    if (opened) await fmt.closeInput();
    fmt.freeContext();
  };
  try {
    // Only the declared demuxers and protocols (open-policy.ts).
    const options = av.Dictionary.fromObject(openOptions(path));
    let ret: number;
    try {
      ret = await fmt.openInput(isUrl(path) ? path : `file:${path}`, null, options);
    } finally {
      options.free();
    }
    if (stopped !== undefined) throw stopped;
    if (ret === av.AVERROR_EINVAL) {
      // A whitelist refused: a local file's demuxer, or a protocol a URL leads to (FFmpeg's log says which: debuglog).
      if (isUrl(path)) throw refusedProtocolError(path, undefined);
      const refused = await refusedFormat(av, path);
      if (refused) throw refusedFormatError(path, refused);
    }
    if (ret < 0) throw new OpenError(ret, av.FFmpegError.strerror(ret));
    opened = true;
  } catch (error) {
    await close();
    throw error;
  }
  return {
    fmt,
    close,
    stop: () => {
      if (stopped !== undefined) throw stopped;
      return undefined;
    },
  };
}

/**
 * The demuxer FFmpeg picks for a local file by its first bytes, when it is one the whitelist
 * refuses (its open then fails with EINVAL): its name goes into the error.
 */
async function refusedFormat(av: Av, path: string): Promise<string | undefined> {
  const head = await readHead(path, 64 * 1024).catch(() => undefined);
  const name = head && head.length > 0 ? av.InputFormat.probe(Buffer.from(head), path)?.name : undefined;
  return name && !isAllowedFormat(name) ? name : undefined;
}

export class OpenError extends Error {
  constructor(
    readonly ret: number,
    message: string,
  ) {
    super(message);
  }
}

/** `openInput` for a decode: a file libav cannot open is CORRUPT. */
export async function openForDecode(
  av: Av,
  path: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Opened & { stop(): unknown } & AsyncDisposable> {
  const input = await openInput(av, path, signal, timeoutMs, `libav decode ${path}`).catch(
    (error: unknown) => {
      if (error instanceof OpenError)
        throw new IngestError('CORRUPT', path, `${path}: libav cannot open it (${error.message})`, {
          cause: error,
        });
      throw error;
    },
  );
  return { ...input, [Symbol.asyncDispose]: input.close };
}

/**
 * The video stream to decode: the first that is not a cover picture. MPEG-TS and raw
 * streams say nothing before a look at the packets (a decoder finds its pixel format itself:
 * an MP4 needs no look).
 */
export async function videoStream(
  av: Av,
  path: string,
  fmt: FormatContext,
  check: () => void,
): Promise<Stream> {
  const pick = (): Stream | undefined =>
    fmt.streams.find(
      (s) =>
        s.codecpar.codecType === av.AVMEDIA_TYPE_VIDEO && !s.hasDisposition(av.AV_DISPOSITION_ATTACHED_PIC),
    );
  let stream = pick();
  if (!stream || stream.codecpar.width === 0) {
    await fmt.findStreamInfo();
    check();
    stream = pick();
  }
  if (!stream) throw new IngestError('NOT_A_VIDEO', path, `${path}: no video stream`);
  return stream;
}
