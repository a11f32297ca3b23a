/**
 * What a probe gives, for both decoders: ffprobe's JSON shape (which the libav decoder fills
 * in from its open input) checked and turned into a `ProbeResult`, the checks made on an input
 * before it is opened, and the error code of an input FFmpeg cannot open. See probe.ts for
 * the codes.
 */
import type { Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { access, constants, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { IngestError } from '../errors.js';
import { debug } from '../log.js';
import { isUrl, STILL_IMAGE } from './open-policy.js';
import type { ProbeResult } from './types.js';

export interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  start_time?: string;
  duration?: string;
  nb_frames?: string;
  time_base?: string;
  tags?: Record<string, string>;
  disposition?: Record<string, number>;
  side_data_list?: Array<Record<string, unknown>>;
  codec_tag_string?: string;
}

export interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { duration?: string; start_time?: string; format_name?: string };
}

/** "30000/1001" → 29.97; 0 for "0/0" or junk. */
function rate(text: string | undefined): number {
  if (!text) return 0;
  const [n, d] = text.split('/').map(Number);
  const value = d === undefined ? n : n / d;
  return Number.isFinite(value) && value > 0 ? value : 0;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined || text === 'N/A') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** Clockwise degrees (0, 90, 180, 270) that a player turns the picture for display. */
function rotationOf(stream: FfprobeStream): number {
  // Newer ffprobe: the display matrix's `rotation`, counter-clockwise degrees.
  for (const side of stream.side_data_list ?? []) {
    if (typeof side.rotation === 'number' || typeof side.rotation === 'string') {
      const ccw = Number(side.rotation);
      if (Number.isFinite(ccw)) return (((Math.round(-ccw / 90) * 90) % 360) + 360) % 360;
    }
  }
  // Older ffprobe: the `rotate` tag, clockwise degrees.
  const tag = num(stream.tags?.rotate);
  if (tag !== undefined) return (((Math.round(tag / 90) * 90) % 360) + 360) % 360;
  return 0;
}

/**
 * Whether the first bytes look like a known video container. A file ffprobe rejects is
 * `CORRUPT` when it does, and `NOT_A_VIDEO` when it does not (a text file named .mp4).
 */
export function looksLikeContainer(head: Uint8Array): boolean {
  const ascii = (at: number, text: string): boolean => {
    for (let i = 0; i < text.length; i++) if (head[at + i] !== text.charCodeAt(i)) return false;
    return true;
  };
  // ISO BMFF / QuickTime: a box type at offset 4.
  if (['ftyp', 'moov', 'mdat', 'free', 'wide', 'skip', 'pnot', 'styp', 'uuid'].some((box) => ascii(4, box)))
    return true;
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return true; // Matroska / WebM
  if (ascii(0, 'RIFF') && (ascii(8, 'AVI ') || ascii(8, 'WEBP'))) return true;
  if (ascii(0, 'FLV') || ascii(0, 'OggS')) return true;
  if (head[0] === 0x47 && (head.length < 189 || head[188] === 0x47)) return true; // MPEG-TS sync bytes
  if (head[0] === 0 && head[1] === 0 && head[2] === 1 && (head[3] === 0xba || head[3] === 0xb3)) return true; // MPEG-PS / ES
  if (head[0] === 0x30 && head[1] === 0x26 && head[2] === 0xb2 && head[3] === 0x75) return true; // ASF / WMV
  return false;
}

/** "29.97" → 29.97, "90k" → 90000; undefined for anything else. */
function ffmpegNumber(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^([\d.]+)(k?)$/.exec(text);
  return m ? Number(m[1]) * (m[2] ? 1000 : 1) : undefined;
}

/**
 * Reads what `ffmpeg -i` prints about an input into the shape ffprobe's JSON has. Used only
 * when ffprobe itself crashes (the static ffprobe of @ffprobe-installer dies with SIGSEGV on
 * MPEG-TS input on some machines); the frame count is then an estimate.
 */
export function parseFfmpegInfo(stderr: string): FfprobeOutput | undefined {
  if (!/^Input #0, /m.test(stderr)) return undefined;
  const lines = stderr.split('\n');
  const output: FfprobeOutput = {
    streams: [],
    format: { format_name: /^Input #0, (.*?), from /m.exec(stderr)?.[1] },
  };
  const d = /^\s*Duration: (?:(\d+):(\d+):([\d.]+)|N\/A), start: (-?[\d.]+)/m.exec(stderr);
  if (d) {
    if (d[1] !== undefined)
      output.format!.duration = String(Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]));
    output.format!.start_time = d[4];
  }
  let current: FfprobeStream | undefined;
  for (const line of lines) {
    const stream = /^\s*Stream #0:\d+\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$/.exec(line);
    if (stream) {
      const type = stream[1].toLowerCase();
      // "h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 160x120 [SAR 1:1 DAR 4:3], 24 fps, 24 tbr, ..."
      const rest = stream[2];
      const parts = rest.split(', ');
      current = { codec_type: type, codec_name: parts[0].split(' ')[0] };
      if (type === 'video') {
        const pix = parts[1]?.split('(')[0].trim();
        const size = /, (\d+)x(\d+)/.exec(rest);
        const fps = / ([\d.]+k?) fps/.exec(rest);
        const tbr = / ([\d.]+k?) tbr/.exec(rest);
        current.pix_fmt = pix && /^[a-z0-9_]+$/.test(pix) ? pix : undefined;
        if (size) [current.width, current.height] = [Number(size[1]), Number(size[2])];
        const avg = ffmpegNumber(fps?.[1]);
        const nominal = ffmpegNumber(tbr?.[1]) ?? avg;
        if (avg) current.avg_frame_rate = String(avg);
        if (nominal) current.r_frame_rate = String(nominal);
        if (/\(attached pic\)/.test(rest)) current.disposition = { attached_pic: 1 };
        current.start_time = output.format!.start_time;
        current.duration = output.format!.duration;
      }
      output.streams!.push(current);
      continue;
    }
    const rotate = /^\s*rotate\s*: (-?\d+)/.exec(line);
    if (rotate && current) current.tags = { ...current.tags, rotate: rotate[1] };
  }
  return output;
}

/** What ffmpeg says when a URL's server cannot be reached. */
const NETWORK_FAILURE =
  /connection refused|connection timed out|connection reset|failed to resolve|name or service not known|temporary failure in name resolution|network is unreachable|no route to host/i;

export async function readHead(path: string, bytes = 512): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Stats an input without opening it. A missing path is `ENOENT`, a folder `EISDIR` (or
 * `EACCES` when it cannot be read: a folder walk lists such a folder so that it is reported,
 * not left out), and anything else that is not a regular file (a FIFO, a socket, a device)
 * `NOT_A_FILE`: an open of a FIFO blocks until a writer comes, beyond any timeout or signal,
 * so such a path is never opened.
 */
export async function statInput(path: string): Promise<Stats> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES')
      throw new IngestError('EACCES', path, `${path}: permission denied`, { cause: error });
    if (code === 'ENOENT' && (await hasUndecodableName(path))) {
      throw new IngestError(
        'BAD_NAME',
        path,
        `${path}: the name is not valid UTF-8 (shown with U+FFFD), so it has no path to open it by; rename it to UTF-8 (e.g. with convmv)`,
        { cause: error },
      );
    }
    throw new IngestError('ENOENT', path, `${path}: no such file (${code ?? 'stat failed'})`, {
      cause: error,
    });
  }
  if (info.isDirectory()) {
    const readable = await access(path, constants.R_OK | constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!readable)
      throw new IngestError(
        'EACCES',
        path,
        `${path}: a folder that cannot be read (permission denied); its videos were not processed`,
      );
    throw new IngestError('EISDIR', path, `${path}: is a directory, not a video file`);
  }
  if (!info.isFile()) {
    const kind = info.isFIFO()
      ? 'a named pipe (FIFO)'
      : info.isSocket()
        ? 'a socket'
        : info.isCharacterDevice() || info.isBlockDevice()
          ? 'a device'
          : 'not a regular file';
    throw new IngestError('NOT_A_FILE', path, `${path}: is ${kind}, not a regular file; it was not opened`);
  }
  // Else ffprobe's "Permission denied" would read as a file that is not a video.
  if (
    !(await access(path, constants.R_OK).then(
      () => true,
      () => false,
    ))
  )
    throw new IngestError('EACCES', path, `${path}: permission denied`);
  return info;
}

/** Whether `path` is the lossy decoding of a name in its folder that is not valid UTF-8 (as a folder walk lists such a name). */
export async function hasUndecodableName(path: string): Promise<boolean> {
  if (!path.includes('\uFFFD')) return false;
  const names = await readdir(dirname(path), { encoding: 'buffer' }).catch(() => [] as Buffer[]);
  return names.some((bytes) => !isUtf8(bytes) && bytes.toString('utf8') === basename(path));
}

/**
 * The video stream of a raw elementary stream (`.h264`): no header gives its length, so its
 * frames must be listed (demuxed, not decoded) before it can be planned. Undefined otherwise.
 */
export function unlistedStream(output: FfprobeOutput): FfprobeStream | undefined {
  const video = videoStream(output);
  if (!video || STILL_IMAGE.test(output.format?.format_name ?? '')) return undefined;
  return num(video.duration) === undefined &&
    num(output.format?.duration) === undefined &&
    num(video.nb_frames) === undefined
    ? video
    : undefined;
}

/**
 * Sets a raw stream's frame count, duration and rate from its packets' durations (in
 * time-base units: integers, so their sum is exact). The decoders decode on that timeline, or
 * at the guessed rate where the stream has no timing.
 */
export function listFrames(path: string, video: FfprobeStream, durations: number[]): void {
  const total = durations.reduce((sum, d) => sum + d, 0) * rate(video.time_base); // "1/1200000" → seconds per unit
  video.nb_frames = String(durations.length);
  if (durations.length > 0 && durations.every((d) => d > 0) && total > 0 && Number.isFinite(total)) {
    video.duration = String(total);
    video.avg_frame_rate = `${durations.length}/${total}`;
  }
  debug(
    'probe %s: no duration in any header; %d frames listed, %s s',
    path,
    durations.length,
    video.duration ?? 'unknown',
  );
}

/** The video stream ffprobe found: the first that is not a cover picture. */
function videoStream(output: FfprobeOutput): FfprobeStream | undefined {
  return output.streams?.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
}

/**
 * Size and modification time of an input, checked as statInput() checks it (a URL has
 * none); a zero-byte file is `EMPTY_FILE`.
 */
export async function readInputInfo(path: string): Promise<{ size: number; mtimeMs: number }> {
  // A URL is read by ffmpeg as it is: there is no file to look at first.
  if (isUrl(path)) return { size: 0, mtimeMs: 0 };
  const info = await statInput(path);
  if (info.size === 0) throw new IngestError('EMPTY_FILE', path, `${path}: the file is empty (0 bytes)`);
  return info;
}

/**
 * The error for an input that FFmpeg could not open (`detail`: its last words): a 404 is
 * `ENOENT`, a file that starts like a video container `CORRUPT`, anything else `NOT_A_VIDEO`.
 */
export async function classifyOpenFailure(
  path: string,
  detail: string,
  cause: unknown,
): Promise<IngestError> {
  const url = isUrl(path);
  let head: Uint8Array = new Uint8Array();
  try {
    if (!url) head = await readHead(path);
  } catch {
    // Unreadable: classified as not a video below.
  }
  if (url && /\b(404|410)\b|Not Found/i.test(detail))
    return new IngestError('ENOENT', path, `${path}: the server has no such file (${detail})`, { cause });
  if (url && NETWORK_FAILURE.test(detail))
    return new IngestError('NETWORK', path, `${path}: the server cannot be reached (${detail})`, { cause });
  if (looksLikeContainer(head)) {
    return new IngestError(
      'CORRUPT',
      path,
      `${path}: looks like a video container but ffprobe cannot read it (${detail})`,
      { cause },
    );
  }
  return new IngestError('NOT_A_VIDEO', path, `${path}: not a video file ffprobe recognises (${detail})`, {
    cause,
  });
}

/** Checks and converts ffprobe's JSON (or parseFfmpegInfo's) into a ProbeResult. */
export function fromFfprobe(
  path: string,
  info: { size: number; mtimeMs: number },
  output: FfprobeOutput,
): ProbeResult {
  const streams = output.streams ?? [];
  const video = videoStream(output);
  // A still image (png_pipe, jpeg_pipe, image2, whatever its name says) has a "video" stream of one picture.
  const format = output.format?.format_name ?? '';
  if (video && STILL_IMAGE.test(format)) {
    throw new IngestError(
      'NOT_A_VIDEO',
      path,
      `${path}: is a still image (${video.codec_name ?? format}), not a video`,
    );
  }
  if (!video) {
    const kinds = streams.map((s) => s.codec_type).filter(Boolean);
    throw new IngestError(
      'NOT_A_VIDEO',
      path,
      `${path}: no video stream${kinds.length ? ` (only ${[...new Set(kinds)].join(', ')})` : ''}`,
    );
  }
  const codec = video.codec_name;
  if (!codec || codec === 'unknown' || codec === 'none') {
    const tag = video.codec_tag_string;
    throw new IngestError(
      'UNSUPPORTED',
      path,
      `${path}: unknown video codec${tag ? ` '${tag}'` : ''}; this ffmpeg cannot decode it`,
    );
  }

  const nominalFrameRate = rate(video.r_frame_rate);
  const avgFrameRate = rate(video.avg_frame_rate) || nominalFrameRate;
  const startTime = num(video.start_time) ?? num(output.format?.start_time) ?? 0;
  const nbFrames = num(video.nb_frames);
  let duration = num(video.duration) ?? num(output.format?.duration);
  if (duration === undefined && nbFrames !== undefined && avgFrameRate > 0)
    duration = nbFrames / avgFrameRate;
  if (duration === undefined || !(duration > 0) || !(avgFrameRate > 0)) {
    throw new IngestError('CORRUPT', path, `${path}: the video stream has no usable duration or frame rate`);
  }
  const frameCountExact = nbFrames !== undefined && nbFrames > 0;
  const frameCount = frameCountExact ? nbFrames : Math.max(1, Math.round(duration * avgFrameRate));
  const codedWidth = video.width ?? 0;
  const codedHeight = video.height ?? 0;
  if (!(codedWidth > 0 && codedHeight > 0))
    throw new IngestError('CORRUPT', path, `${path}: the video stream has no picture size`);
  const rotation = rotationOf(video);
  const swap = rotation === 90 || rotation === 270;

  const result: ProbeResult = {
    path,
    size: info.size,
    mtimeMs: info.mtimeMs,
    duration,
    startTime,
    avgFrameRate,
    nominalFrameRate: nominalFrameRate || avgFrameRate,
    frameCount,
    frameCountExact,
    codedWidth,
    codedHeight,
    rotation,
    width: swap ? codedHeight : codedWidth,
    height: swap ? codedWidth : codedHeight,
    codec,
    pixelFormat: video.pix_fmt ?? 'unknown',
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
  };
  if (output.format?.format_name) result.formatName = output.format.format_name;
  debug('probe %s: %o', path, result);
  return result;
}
