/**
 * The ffmpeg and ffprobe binaries, and the one child-process runner every ingest stage uses.
 *
 * Binaries: `FFMPEG_PATH` / `FFPROBE_PATH` win; otherwise the static builds shipped in
 * `@ffmpeg-installer/ffmpeg` and `@ffprobe-installer/ffprobe`.
 *
 * Processes: a child is killed on abort or timeout with SIGTERM, then SIGKILL after a grace
 * period; the promise settles only after the child has exited (so it has been reaped: no
 * zombie, and no process is left when the caller sees the rejection). Children still alive
 * when this process exits are killed from an `exit` hook; a child whose parent was killed
 * outright dies on its next write to the closed stdout pipe (SIGPIPE).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { FfmpegError, FramewiseError } from '../errors.js';
import { debug } from '../log.js';

const require = createRequire(import.meta.url);

/** Paths of the two binaries, and where each came from. */
/** An input that ffmpeg reads over the network (`http://`, `https://`, `ftp://`) rather than a path. */
export function isUrl(input: string): boolean {
  return /^(https?|ftp):\/\//i.test(input);
}

/** How ffmpeg and ffprobe are given an input: a URL as it is, a path as `file:` (so no name is read as a protocol or an option). */
export function ffmpegInput(input: string): string {
  return isUrl(input) ? input : `file:${input}`;
}

export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
  /** `env` when FFMPEG_PATH / FFPROBE_PATH set it, `package` when the installer package did. */
  ffmpegSource: 'env' | 'package';
  ffprobeSource: 'env' | 'package';
}

function fromPackage(name: string): string | undefined {
  try {
    return (require(name) as { path: string }).path;
  } catch {
    return undefined;
  }
}

const HOW_TO_FIX =
  'Install the npm packages @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe (run `npm install` in the project), ' +
  'or point FFMPEG_PATH and FFPROBE_PATH at working ffmpeg and ffprobe binaries (for example `export FFMPEG_PATH=$(which ffmpeg) FFPROBE_PATH=$(which ffprobe)`).';

/** Resolves the binaries without running them. Throws `FFMPEG_NOT_FOUND` when there are none. */
export function resolveBinaries(): FfmpegBinaries {
  const envFfmpeg = process.env.FFMPEG_PATH;
  const envFfprobe = process.env.FFPROBE_PATH;
  const ffmpeg = envFfmpeg || fromPackage('@ffmpeg-installer/ffmpeg');
  const ffprobe = envFfprobe || fromPackage('@ffprobe-installer/ffprobe');
  if (!ffmpeg || !ffprobe) {
    throw new FramewiseError('FFMPEG_NOT_FOUND', `No ${!ffmpeg ? 'ffmpeg' : 'ffprobe'} binary found. ${HOW_TO_FIX}`);
  }
  return { ffmpeg, ffprobe, ffmpegSource: envFfmpeg ? 'env' : 'package', ffprobeSource: envFfprobe ? 'env' : 'package' };
}

let checked: Promise<FfmpegBinaries & { ffmpegVersion: string; ffprobeVersion: string }> | undefined;
let checkedKey = '';

/**
 * Checks once per process (per FFMPEG_PATH/FFPROBE_PATH) that both binaries run, and
 * returns their paths and version lines. Throws one `FFMPEG_NOT_FOUND` error that says how
 * to fix it. Every probe and extraction awaits this first.
 */
export function checkBinaries(): Promise<FfmpegBinaries & { ffmpegVersion: string; ffprobeVersion: string }> {
  const key = `${process.env.FFMPEG_PATH ?? ''}\0${process.env.FFPROBE_PATH ?? ''}`;
  if (!checked || key !== checkedKey) {
    checkedKey = key;
    checked = (async () => {
      const bins = resolveBinaries();
      const version = async (path: string, name: string, source: string): Promise<string> => {
        try {
          const { stdout } = await runProcess(path, ['-hide_banner', '-version'], { timeoutMs: 20_000 });
          const line = stdout.toString('utf8').split('\n')[0] ?? '';
          if (!line.includes(name)) throw new Error(`unexpected output: ${line.slice(0, 80)}`);
          return line;
        } catch (error) {
          const why = error instanceof FfmpegError ? error.message : (error as Error).message;
          throw new FramewiseError(
            'FFMPEG_NOT_FOUND',
            `${name} at ${path} (from ${source === 'env' ? `${name === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'}` : 'its npm package'}) does not run: ${why}. ${HOW_TO_FIX}`,
            { cause: error },
          );
        }
      };
      const [ffmpegVersion, ffprobeVersion] = await Promise.all([
        version(bins.ffmpeg, 'ffmpeg', bins.ffmpegSource),
        version(bins.ffprobe, 'ffprobe', bins.ffprobeSource),
      ]);
      debug('ffmpeg: %s (%s); ffprobe: %s (%s)', bins.ffmpeg, ffmpegVersion, bins.ffprobe, ffprobeVersion);
      return { ...bins, ffmpegVersion, ffprobeVersion };
    })();
    // A failed check is retried next time (the user may fix the path meanwhile).
    checked.catch(() => {
      checked = undefined;
    });
  }
  return checked;
}

// ---------------------------------------------------------------------------------------

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous: runs on process.exit() and normal exit. Children must not outlive us.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** Number of ffmpeg/ffprobe children this process is running now (for tests and debugging). */
export function liveProcessCount(): number {
  return live.size;
}

export interface ProcessOptions {
  signal?: AbortSignal;
  /** Kill the child after this many milliseconds; the error has code `TIMEOUT`. @default undefined (no limit) */
  timeoutMs?: number;
  /** Time between SIGTERM and SIGKILL. @default 2000 */
  killGraceMs?: number;
  /** Called with each stdout chunk; when given, stdout is not collected. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with each complete stderr line. */
  onStderrLine?: (line: string) => void;
  /** How much of stderr to keep for errors. @default 16384 */
  stderrLimit?: number;
  /** Exit codes that count as success. @default [0] */
  okExitCodes?: number[];
}

export interface RunResult {
  stdout: Buffer;
  /** The last `stderrLimit` characters of stderr. */
  stderr: string;
  exitCode: number;
}

/** Quotes an argument for the `command` string shown in errors (never executed by a shell). */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `file args` and resolves when it exits with an accepted code. Rejects with
 * `FfmpegError` (code `FFMPEG`, or `TIMEOUT` on timeout), or with `signal.reason` on abort;
 * in every case only after the child has exited.
 */
export function runProcess(file: string, args: string[], options: ProcessOptions = {}): Promise<RunResult> {
  const { signal, timeoutMs, killGraceMs = 2000, onStdout, onStderrLine, stderrLimit = 16384, okExitCodes = [0] } = options;
  signal?.throwIfAborted();
  const command = [file, ...args].map(shellQuote).join(' ');
  return new Promise<RunResult>((resolve, reject) => {
    installExitHook();
    let child: ChildProcess;
    try {
      child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    } catch (error) {
      reject(new FfmpegError({ command, exitCode: null, signal: null, stderr: (error as Error).message }));
      return;
    }
    live.add(child);
    const chunks: Buffer[] = [];
    let stderr = '';
    let partial = '';
    let stopReason: { kind: 'abort'; reason: unknown } | { kind: 'timeout' } | { kind: 'callback'; error: unknown } | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let spawnError: Error | undefined;

    const stop = (why: NonNullable<typeof stopReason>): void => {
      if (stopReason) return;
      stopReason = why;
      debug('killing %s: %s', command.slice(0, 200), why.kind);
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), killGraceMs);
      killTimer.unref?.();
    };
    const onAbort = (): void => stop({ kind: 'abort', reason: signal!.reason });
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = timeoutMs !== undefined ? setTimeout(() => stop({ kind: 'timeout' }), timeoutMs) : undefined;

    child.stdout!.on('data', (chunk: Buffer) => {
      if (stopReason) return;
      if (!onStdout) {
        chunks.push(chunk);
        return;
      }
      try {
        onStdout(chunk);
      } catch (error) {
        stop({ kind: 'callback', error });
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      stderr += text;
      if (stderr.length > stderrLimit * 2) stderr = stderr.slice(-stderrLimit);
      if (onStderrLine) {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) onStderrLine(line);
      }
    });
    child.on('error', (error) => {
      spawnError = error;
      // A child that never started emits no 'close' on some Node versions: settle here.
      if (child.pid === undefined) finish(null, null);
    });
    // 'close' comes after the process exited and its pipes were drained.
    let settled = false;
    const finish = (exitCode: number | null, exitSignal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      live.delete(child);
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      if (onStderrLine && partial) onStderrLine(partial);
      const tail = stderr.slice(-stderrLimit);
      const details = { command, exitCode, signal: exitSignal, stderr: spawnError ? `${spawnError.message}\n${tail}` : tail };
      if (stopReason?.kind === 'abort') reject(stopReason.reason);
      else if (stopReason?.kind === 'timeout') reject(new FfmpegError({ ...details, timeoutMs }, 'TIMEOUT'));
      else if (stopReason?.kind === 'callback') reject(stopReason.error);
      else if (spawnError || exitCode === null || !okExitCodes.includes(exitCode)) reject(new FfmpegError(details));
      else resolve({ stdout: Buffer.concat(chunks), stderr: tail, exitCode });
    };
    child.on('close', finish);
  });
}
