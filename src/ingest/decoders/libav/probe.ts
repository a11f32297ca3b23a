/**
 * The libav decoder's probe: one `avformat_open_input` (plus `find_stream_info` where the
 * container leaves the stream's format unknown), read into the shape ffprobe's JSON has and
 * checked by the same code as the CLI path's, so both give the same `ProbeResult` and the
 * same error codes.
 */
import type * as NodeAv from 'node-av';
import type { FormatContext } from 'node-av';
import { debug } from '../../../log.js';
import {
  classifyOpenFailure,
  fromFfprobe,
  listFrames,
  readInputInfo,
  unlistedStream,
  type FfprobeOutput,
  type FfprobeStream,
} from '../../metadata.js';
import type { ProbeResult } from '../../types.js';
import { loadLibav, seconds, YIELD_AFTER_MS, type Av } from './av.js';
import { OpenError, openInput, type Opened } from './input.js';

function rational(r: { num: number; den: number }): string {
  return `${r.num}/${r.den}`;
}

/** Clockwise degrees from a display matrix (nine int32, 16.16 fixed point), as ffprobe gives `rotation` (counter-clockwise). */
export function displayMatrixRotation(matrix: Int32Array): number {
  const scale0 = Math.hypot(matrix[0], matrix[3]);
  const scale1 = Math.hypot(matrix[1], matrix[4]);
  if (scale0 === 0 || scale1 === 0) return 0;
  return -(Math.atan2(matrix[1] / scale1, matrix[0] / scale0) * 180) / Math.PI;
}

function sideMatrix(data: Buffer | null): Int32Array | undefined {
  if (!data || data.byteLength < 36) return undefined;
  const copy = new Uint8Array(36);
  copy.set(data.subarray(0, 36));
  return new Int32Array(copy.buffer);
}

/** The streams of an open input, in the shape ffprobe's JSON has. */
function describe(av: Av, fmt: FormatContext): FfprobeOutput {
  const tbSeconds = (ts: bigint, tb: { num: number; den: number }): string | undefined => {
    const s = seconds(ts, tb, av.AV_NOPTS_VALUE);
    return s === undefined ? undefined : s.toFixed(6); // as ffprobe prints them
  };
  const streams: FfprobeStream[] = fmt.streams.map((stream) => {
    const par = stream.codecpar;
    const type =
      par.codecType === av.AVMEDIA_TYPE_VIDEO
        ? 'video'
        : par.codecType === av.AVMEDIA_TYPE_AUDIO
          ? 'audio'
          : par.codecType === av.AVMEDIA_TYPE_SUBTITLE
            ? 'subtitle'
            : 'data';
    const out: FfprobeStream = { codec_type: type, codec_name: av.avGetCodecName(par.codecId) ?? 'unknown' };
    if (type !== 'video') return out;
    const matrix = sideMatrix(par.getCodedSideData(av.AV_PKT_DATA_DISPLAYMATRIX));
    Object.assign(out, {
      width: par.width,
      height: par.height,
      pix_fmt:
        (par.format as number) >= 0
          ? (av.avGetPixFmtName(par.format as NodeAv.AVPixelFormat) ?? undefined)
          : undefined,
      r_frame_rate: rational(stream.rFrameRate),
      avg_frame_rate: rational(stream.avgFrameRate),
      start_time: tbSeconds(stream.startTime, stream.timeBase),
      duration: tbSeconds(stream.duration, stream.timeBase),
      nb_frames: stream.nbFrames > 0n ? String(stream.nbFrames) : undefined,
      disposition: { attached_pic: stream.hasDisposition(av.AV_DISPOSITION_ATTACHED_PIC) ? 1 : 0 },
      side_data_list: matrix ? [{ rotation: displayMatrixRotation(matrix) }] : [],
      codec_tag_string: par.codecTagString ?? undefined,
      time_base: rational(stream.timeBase),
    });
    if (!av.Codec.findDecoder(par.codecId)) out.codec_name = 'none';
    return out;
  });
  const us = { num: 1, den: 1_000_000 };
  return {
    streams,
    format: {
      format_name: fmt.iformat?.name ?? undefined,
      duration: tbSeconds(fmt.duration, us),
      start_time: tbSeconds(fmt.startTime, us),
    },
  };
}

/** The durations (time-base units) of one stream's packets, read to the end: a raw stream's frame list. */
async function packetDurations(
  av: Av,
  fmt: FormatContext,
  index: number,
  signal: AbortSignal | undefined,
): Promise<number[]> {
  const durations: number[] = [];
  const packet = new av.Packet();
  packet.alloc();
  try {
    let lastYield = performance.now();
    while (fmt.readFrameSync(packet) >= 0) {
      if (packet.streamIndex === index) durations.push(Number(packet.duration));
      packet.unref();
      if (performance.now() - lastYield > YIELD_AFTER_MS) {
        await new Promise(setImmediate);
        signal?.throwIfAborted();
        lastYield = performance.now();
      }
    }
    return durations;
  } finally {
    packet.free();
  }
}

/** `probe()` in-process. Arguments are checked by the caller. */
export async function probeLibav(
  path: string,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<ProbeResult> {
  const av = await loadLibav();
  const info = await readInputInfo(path);
  signal?.throwIfAborted();
  let input: Opened & { stop(): unknown };
  try {
    input = await openInput(av, path, signal, timeoutMs, `libav probe ${path}`);
  } catch (error) {
    if (!(error instanceof OpenError)) throw error;
    throw await classifyOpenFailure(path, error.message, error);
  }
  try {
    const ret = await input.fmt.findStreamInfo();
    input.stop();
    if (ret < 0) debug('libav: find_stream_info on %s: %s', path, av.FFmpegError.strerror(ret));
    const output = describe(av, input.fmt);
    const raw = unlistedStream(output);
    if (raw)
      listFrames(path, raw, await packetDurations(av, input.fmt, output.streams!.indexOf(raw), signal));
    return fromFfprobe(path, info, output);
  } finally {
    await input.close();
  }
}
