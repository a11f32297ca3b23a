/**
 * What framewise opens, declared once for both decoders: the demuxers (FFmpeg's
 * `format_whitelist`) and the protocols (`protocol_whitelist`) an input may use.
 *
 * FFmpeg picks a demuxer by what a file's bytes look like, and some demuxers read more than
 * the file: `tty` shows a text file as ANSI art (so `readme.txt` would be "classified"),
 * `hls` and `concat` open every file or URL a playlist names (a playlist hidden in a file
 * named `.avi` once read local files into a transcode), `image2` reads a numbered sequence of
 * other files, `lavfi` makes video from a filter graph. So an input opens only with the
 * container and elementary-stream demuxers below, and only over the protocols it names: a
 * path over `file` alone, an `http://` URL over `http` and `tcp`, an `https://` URL over
 * `https`, `tls` and `tcp`. FFmpeg copies both lists into any demuxer a demuxer opens
 * inside itself (an AVI's subtitles), so they hold there too.
 *
 * A file whose format is not on the list is `NOT_A_VIDEO` on both decoders.
 * `FRAMEWISE_FORMATS` (comma-separated demuxer names) adds to the list; nothing widens the
 * protocols. The worker of a run across machines opens inputs under the same lists.
 */
import { IngestError, UsageError } from '../errors.js';

/** An input that FFmpeg reads over the network (`http://`, `https://`, `ftp://`) rather than a path. */
export function isUrl(input: string): boolean {
  return /^(https?|ftp):\/\//i.test(input);
}

/**
 * The demuxers an input may be read with (FFmpeg's names; a demuxer named by a list such as
 * `mov,mp4,m4a,3gp,3g2,mj2` passes when one of its names is here).
 */
export const VIDEO_DEMUXERS: readonly string[] = [
  // Containers.
  'mov',
  'matroska',
  'avi',
  'mpegts',
  'mpeg',
  'flv',
  'asf',
  'ogg',
  'nut',
  'mxf',
  'dv',
  'gxf',
  'rm',
  'wtv',
  'ivf',
  'yuv4mpegpipe',
  // Animated pictures: one file, many frames.
  'gif',
  'apng',
  // Elementary streams with no container (`.h264`, `.hevc`, `.m4v`, `.mjpeg`, `.obu`, ...).
  'h264',
  'hevc',
  'vvc',
  'm4v',
  'mpegvideo',
  'cavsvideo',
  'avs2',
  'avs3',
  'vc1',
  'obu',
  'mjpeg',
  'h261',
  'h263',
];

/** The environment variable whose comma-separated demuxer names are added to `VIDEO_DEMUXERS`. */
export const FORMATS_ENV = 'FRAMEWISE_FORMATS';

/** The protocols each kind of URL may use: the one it names and what that one runs on. */
const URL_PROTOCOLS: Readonly<Record<string, readonly string[]>> = {
  http: ['http', 'tcp'],
  // `httpproxy`: the CONNECT tunnel FFmpeg opens when `http_proxy` is set (a confined worker's egress proxy).
  https: ['https', 'tls', 'tcp', 'httpproxy'],
  ftp: ['ftp', 'tcp'],
};

/** `VIDEO_DEMUXERS`, and the names in `$FRAMEWISE_FORMATS`. */
export function allowedFormats(): readonly string[] {
  const extra = (process.env[FORMATS_ENV] ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const bad = extra.find((name) => !/^[a-z0-9_]+$/.test(name));
  if (bad !== undefined)
    throw new UsageError(
      `Expected demuxer names (a-z, 0-9, _) separated by commas in $${FORMATS_ENV} but received '${bad}'`,
    );
  return extra.length === 0 ? VIDEO_DEMUXERS : [...new Set([...VIDEO_DEMUXERS, ...extra])];
}

/** Whether a demuxer (`tty`, or a list of names such as `matroska,webm`) is one framewise opens. */
export function isAllowedFormat(name: string): boolean {
  const allowed = allowedFormats();
  return name.split(',').some((part) => allowed.includes(part));
}

/** The protocols `input` may be read over: the scheme of a URL and what it runs on; `file` for a path. */
export function allowedProtocols(input: string): readonly string[] {
  if (!isUrl(input)) return ['file'];
  return URL_PROTOCOLS[input.slice(0, input.indexOf(':')).toLowerCase()] ?? [];
}

/** The options every open of `input` gets, as FFmpeg's AVFormatContext names them (node-av's `openInput`). */
export function openOptions(input: string): { format_whitelist: string; protocol_whitelist: string } {
  return {
    format_whitelist: allowedFormats().join(','),
    protocol_whitelist: allowedProtocols(input).join(','),
  };
}

/** The same options as ffmpeg and ffprobe input options: they go before each `-i`. */
export function ffmpegOpenArgs(input: string): string[] {
  const options = openOptions(input);
  return ['-format_whitelist', options.format_whitelist, '-protocol_whitelist', options.protocol_whitelist];
}

/** Puts the open options before every `-i <input>` of an ffmpeg argument list. */
export function withOpenArgs(args: readonly string[]): string[] {
  return args.flatMap((arg, i) =>
    arg === '-i' && i + 1 < args.length ? [...ffmpegOpenArgs(args[i + 1]), arg] : [arg],
  );
}

/** The demuxer FFmpeg refused, read from its log ("[tty @ 0x...] Format not on whitelist ..."), if it says so. */
export function refusedFormatIn(log: string): string | undefined {
  return /\[([\w,]+) @ (?:0x)?[0-9a-f]+\] Format not on whitelist/i.exec(log)?.[1];
}

/** The protocol FFmpeg refused, read from its log ("Protocol 'https' not on whitelist 'http,tcp'!"), if it says so. */
export function refusedProtocolIn(log: string): string | undefined {
  return /Protocol '([\w+.-]+)' not on whitelist/.exec(log)?.[1];
}

/**
 * The error for a URL that needs a protocol it does not name (an `http://` URL whose server
 * redirects to `https://`): `NETWORK`, saying which URL to give instead. Where FFmpeg's log
 * is not at hand (libav), `protocol` is undefined, and the refusal may also have been of a
 * demuxer (a playlist).
 */
export function refusedProtocolError(
  path: string,
  protocol: string | undefined,
  cause?: unknown,
): IngestError {
  const what = protocol
    ? `reading it needs the ${protocol} protocol, which the URL does not name`
    : 'FFmpeg refused a protocol or a demuxer that reading it needs';
  const why =
    'a URL opens over the protocols it names only (give the https:// URL an http:// one redirects to), and playlists are not opened';
  return new IngestError(
    'NETWORK',
    path,
    `${path}: ${what}: ${why} (docs/ingest.md, "What framewise opens")`,
    { cause },
  );
}

/** Formats of a still image (png_pipe, jpeg_pipe, image2), whatever the file's name says. */
export const STILL_IMAGE = /(^|,)(image2|[a-z0-9]+_pipe)(,|$)/;

/** The error for a file whose demuxer is not on the list: `NOT_A_VIDEO`, naming it. */
export function refusedFormatError(path: string, format: string, cause?: unknown): IngestError {
  const what = STILL_IMAGE.test(format)
    ? `is a still image (${format}), not a video`
    : `is ${format}, not a video format framewise opens`;
  return new IngestError(
    'NOT_A_VIDEO',
    path,
    `${path}: ${what} (docs/ingest.md, "What framewise opens"; $${FORMATS_ENV} adds demuxers)`,
    { cause },
  );
}
