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
import { FfmpegError, FramewiseError } from '../../../errors.js';
import { debug } from '../../../log.js';
import { onAbort } from '../../../validate.js';
import { isUrl } from '../../open-policy.js';

const require = createRequire(import.meta.url);

/** Paths of the two binaries, and where each came from. */
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
    throw new FramewiseError(
      'FFMPEG_NOT_FOUND',
      `No ${!ffmpeg ? 'ffmpeg' : 'ffprobe'} binary found. ${HOW_TO_FIX}`,
    );
  }
  return {
    ffmpeg,
    ffprobe,
    ffmpegSource: envFfmpeg ? 'env' : 'package',
    ffprobeSource: envFfprobe ? 'env' : 'package',
  };
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
  options.signal?.throwIfAborted();
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
    new WatchedChild(child, command, options, resolve, reject); // settles the promise once the child has exited
  });
}

/** Why a child was stopped before it exited by itself. */
type StopReason =
  | { kind: 'abort'; reason: unknown }
  | { kind: 'timeout' }
  | { kind: 'callback'; error: unknown };

/**
 * One spawned child, from its start to its exit: collects its output, stops it on abort,
 * timeout or a throwing callback (SIGTERM, then SIGKILL after the grace time), and settles
 * the promise once it has exited.
 */
class WatchedChild {
  private readonly chunks: Buffer[] = [];
  private stderr = '';
  /** The stderr line not ended yet. */
  private partial = '';
  private stopReason: StopReason | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private spawnError: Error | undefined;
  private settled = false;
  private readonly stderrLimit: number;
  /** Removes the abort listener (validate.ts's onAbort: one listener per signal, however many children share it). */
  private readonly offAbort: () => void;

  constructor(
    private readonly child: ChildProcess,
    private readonly command: string,
    private readonly options: ProcessOptions,
    private readonly resolve: (result: RunResult) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    const { signal, timeoutMs } = options;
    this.stderrLimit = options.stderrLimit ?? 16384;
    this.offAbort = onAbort(signal, () => this.stop({ kind: 'abort', reason: signal!.reason }));
    this.timer =
      timeoutMs !== undefined ? setTimeout(() => this.stop({ kind: 'timeout' }), timeoutMs) : undefined;
    child.stdout!.on('data', (chunk: Buffer) => this.onStdout(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => this.onStderr(text));
    child.on('error', (error) => {
      this.spawnError = error;
      // A child that never started emits no 'close' on some Node versions: settle here.
      if (child.pid === undefined) this.finish(null, null);
    });
    // 'close' comes after the process exited and its pipes were drained.
    child.on('close', (exitCode: number | null, exitSignal: NodeJS.Signals | null) =>
      this.finish(exitCode, exitSignal),
    );
  }

  private stop(why: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = why;
    debug('killing %s: %s', this.command.slice(0, 200), why.kind);
    this.child.kill('SIGTERM');
    this.killTimer = setTimeout(() => this.child.kill('SIGKILL'), this.options.killGraceMs ?? 2000);
    this.killTimer.unref?.();
  }

  private onStdout(chunk: Buffer): void {
    if (this.stopReason) return;
    const { onStdout } = this.options;
    if (!onStdout) {
      this.chunks.push(chunk);
      return;
    }
    try {
      onStdout(chunk);
    } catch (error) {
      this.stop({ kind: 'callback', error });
    }
  }

  private onStderr(text: string): void {
    const { onStderrLine } = this.options;
    this.stderr += text;
    if (this.stderr.length > this.stderrLimit * 2) this.stderr = this.stderr.slice(-this.stderrLimit);
    if (onStderrLine) {
      const lines = (this.partial + text).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) onStderrLine(line);
    }
  }

  private finish(exitCode: number | null, exitSignal: NodeJS.Signals | null): void {
    if (this.settled) return;
    this.settled = true;
    live.delete(this.child);
    if (this.timer) clearTimeout(this.timer);
    if (this.killTimer) clearTimeout(this.killTimer);
    this.offAbort();
    if (this.options.onStderrLine && this.partial) this.options.onStderrLine(this.partial);
    this.settle(exitCode, exitSignal);
  }

  /** Resolves or rejects: a stop's reason first, then a failed start or an exit code not accepted. */
  private settle(exitCode: number | null, exitSignal: NodeJS.Signals | null): void {
    const { command, spawnError, stopReason } = this;
    const tail = this.stderr.slice(-this.stderrLimit);
    const details = {
      command,
      exitCode,
      signal: exitSignal,
      stderr: spawnError ? `${spawnError.message}\n${tail}` : tail,
    };
    if (stopReason?.kind === 'abort') this.reject(stopReason.reason);
    else if (stopReason?.kind === 'timeout')
      this.reject(new FfmpegError({ ...details, timeoutMs: this.options.timeoutMs }, 'TIMEOUT'));
    else if (stopReason?.kind === 'callback') this.reject(stopReason.error);
    else if (spawnError || exitCode === null || !(this.options.okExitCodes ?? [0]).includes(exitCode))
      this.reject(new FfmpegError(details));
    else this.resolve({ stdout: Buffer.concat(this.chunks), stderr: tail, exitCode });
  }
}
