/** The `cli` decoder's probe: ffprobe, or `ffmpeg -i` where ffprobe crashes. */
import { FfmpegError } from '../../../errors.js';
import { debug } from '../../../log.js';
import {
  classifyOpenFailure,
  fromFfprobe,
  listFrames,
  parseFfmpegInfo,
  readInputInfo,
  unlistedStream,
  type FfprobeOutput,
} from '../../metadata.js';
import {
  ffmpegOpenArgs,
  refusedFormatError,
  refusedFormatIn,
  refusedProtocolError,
  refusedProtocolIn,
} from '../../open-policy.js';
import type { ProbeResult } from '../../types.js';
import { checkBinaries, ffmpegInput, runProcess } from './ffmpeg.js';

/** `probe()` by ffprobe (the `cli` decoder). Arguments are checked by the caller. */
export async function probeCli(
  path: string,
  { signal, timeoutMs }: { signal?: AbortSignal; timeoutMs: number },
): Promise<ProbeResult> {
  const info = await readInputInfo(path);
  const input = ffmpegInput(path);

  const { ffprobe } = await checkBinaries();
  signal?.throwIfAborted();
  let output: FfprobeOutput;
  try {
    const { stdout } = await runProcess(
      ffprobe,
      [
        '-v',
        'error',
        '-print_format',
        'json',
        '-show_format',
        '-show_streams',
        ...ffmpegOpenArgs(input),
        '-i',
        input,
      ],
      { signal, timeoutMs },
    );
    output = JSON.parse(stdout.toString('utf8')) as FfprobeOutput;
  } catch (caught) {
    return afterProbeFailure(path, info, input, caught, { signal, timeoutMs });
  }

  const raw = unlistedStream(output);
  if (raw) {
    const { stdout } = await runProcess(
      ffprobe,
      [
        '-v',
        'error',
        '-select_streams',
        'v:0',
        '-show_entries',
        'packet=duration',
        '-print_format',
        'csv=p=0',
        ...ffmpegOpenArgs(input),
        '-i',
        input,
      ],
      { signal, timeoutMs },
    );
    const durations = stdout
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map(Number);
    listFrames(path, raw, durations);
  }
  return fromFfprobe(path, info, output);
}

/**
 * After ffprobe failed on `input`: where it crashed, what `ffmpeg -i` reads instead; else
 * the error that says why the input could not be opened (thrown).
 */
async function afterProbeFailure(
  path: string,
  info: { size: number; mtimeMs: number },
  input: string,
  caught: unknown,
  { signal, timeoutMs }: { signal?: AbortSignal; timeoutMs: number },
): Promise<ProbeResult> {
  let error = caught;
  if (signal?.aborted && error === signal.reason) throw error;
  // ffprobe crashed (a signal, not an exit code): ask ffmpeg instead.
  if (error instanceof FfmpegError && error.code !== 'TIMEOUT' && error.signal !== null) {
    debug('ffprobe crashed on %s (%s); reading ffmpeg -i instead', path, error.signal);
    try {
      const { ffmpeg } = await checkBinaries();
      const { stderr } = await runProcess(
        ffmpeg,
        ['-hide_banner', '-nostdin', ...ffmpegOpenArgs(input), '-i', input],
        {
          signal,
          timeoutMs,
          okExitCodes: [0, 1],
        },
      );
      const parsed = parseFfmpegInfo(stderr);
      if (parsed) return fromFfprobe(path, info, parsed);
      error = new FfmpegError({ command: 'ffmpeg -i', exitCode: 1, signal: null, stderr });
    } catch (fallbackError) {
      if (signal?.aborted && fallbackError === signal.reason) throw fallbackError;
      error = fallbackError;
    }
  }
  if (signal?.aborted && error === signal.reason) throw error;
  if (error instanceof FfmpegError && error.code === 'TIMEOUT') throw error;
  const refused = error instanceof FfmpegError ? refusedFormatIn(error.stderr) : undefined;
  if (refused) throw refusedFormatError(path, refused, error);
  const protocol = error instanceof FfmpegError ? refusedProtocolIn(error.stderr) : undefined;
  if (protocol) throw refusedProtocolError(path, protocol, error);
  const detail = (
    error instanceof FfmpegError
      ? (error.stderr.trim().split('\n').slice(-1)[0] ?? '')
      : (error as Error).message
  ).replace(`${input}: `, '');
  throw await classifyOpenFailure(path, detail, error);
}
