/**
 * Named error classes with a stable `code`. Callers branch on `code`, never on messages.
 */

/**
 * Codes for inputs that cannot be used. Each becomes an error record, not a crash:
 * `BAD_NAME` a file name that is not valid UTF-8, `OUT_OF_RANGE` a manifest span outside the video, `TOO_LARGE` a plan whose embeddings would
 * not fit in memory, `NETWORK` a URL whose server cannot be reached.
 */
export type IngestErrorCode =
  | 'ENOENT'
  | 'NOT_A_FILE'
  | 'EACCES'
  | 'EISDIR'
  | 'BAD_NAME'
  | 'EMPTY_FILE'
  | 'NOT_A_VIDEO'
  | 'CORRUPT'
  | 'UNSUPPORTED'
  | 'NETWORK'
  | 'OUT_OF_RANGE'
  | 'TOO_LARGE';

/**
 * The codes an error record can carry: a closed list, each documented in docs/cli.md (Error codes).
 * `ABORTED` marks a video stopped by the run's signal; `WORKER_FAILED` a video whose job took
 * down its queue workers more often than they allow (`framewise worker --max-stalls`);
 * `FORBIDDEN` a path or URL that a queue worker may not open (`--root`, `--allow-host`).
 */
export type RecordErrorCode =
  | IngestErrorCode
  | 'FFMPEG'
  | 'TIMEOUT'
  | 'SHAPE'
  | 'ABORTED'
  | 'WORKER_FAILED'
  | 'FORBIDDEN';

/** Every code a `FramewiseError` can carry. */
export type ErrorCode =
  | IngestErrorCode
  | 'FFMPEG'
  | 'FFMPEG_NOT_FOUND'
  | 'TIMEOUT'
  | 'SHAPE'
  | 'USAGE'
  | 'MODEL'
  | 'BACKEND'
  | 'QUEUE'
  | 'OUTPUT';

/** Base class: every error framewise throws on purpose is one of these. */
export class FramewiseError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
  /** The `{code, message}` shape written into error records. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** A video that cannot be read: missing, empty, not a video, corrupt or unsupported. */
export class IngestError extends FramewiseError {
  readonly path: string;
  constructor(code: IngestErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.path = path;
  }
}

/** An ffmpeg or ffprobe child that failed: the command, how it ended, and the end of stderr. */
export class FfmpegError extends FramewiseError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  constructor(
    details: {
      command: string;
      exitCode: number | null;
      signal: NodeJS.Signals | null;
      stderr: string;
      timeoutMs?: number;
    },
    code: ErrorCode = 'FFMPEG',
  ) {
    const program = details.command.split(' ')[0];
    const how = details.signal ? `signal ${details.signal}` : `exit code ${details.exitCode}`;
    const tail = details.stderr.trim().split('\n').slice(-5).join('\n');
    // A timeout says so; ffmpeg's stderr up to the kill is progress, not a reason (it stays in `stderr`).
    const message =
      code === 'TIMEOUT' && details.timeoutMs !== undefined
        ? `${program.split('/').pop()} timed out after ${Number((details.timeoutMs / 1000).toFixed(3))} s and was stopped (the per-video limit: --timeout, timeoutMs)`
        : `${program} failed with ${how}${tail ? `: ${tail}` : ''}`;
    super(code, message);
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.stderr = details.stderr;
  }
}

/** A tensor or buffer whose shape is not what a stage expects. */
export class ShapeError extends FramewiseError {
  readonly stage: string;
  readonly expected: ReadonlyArray<number | null>;
  readonly received: ReadonlyArray<number | null>;
  constructor(stage: string, expected: ReadonlyArray<number | null>, received: ReadonlyArray<number | null>) {
    super(
      'SHAPE',
      `${stage}: expected shape [${expected.map((d) => d ?? '?').join(', ')}] but received [${received.join(', ')}]`,
    );
    this.stage = stage;
    this.expected = expected;
    this.received = received;
  }
}

/** Bad options or arguments; the CLI maps it to exit code 2. */
export class UsageError extends FramewiseError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** A model that cannot be loaded or does not fit the data (other backbone, other labels). */
export class ModelError extends FramewiseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL', message, options);
  }
}

/**
 * The job queue of a run across machines (`--redis`): Redis unreachable past the timeout, a
 * worker that refused or failed a job. What finished is written; `--resume` carries on.
 */
export class QueueError extends FramewiseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('QUEUE', message, options);
  }
}

/** The errno codes of a write that failed because of where it goes (a full disk, a read-only mount, a closed pipe). */
const WRITE_ERRNOS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EFBIG: 'the file is too large',
  EROFS: 'the file system is read-only',
  EIO: 'an input/output error',
  EPIPE: 'its reader has gone',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/**
 * An output that could not be written: the disk is full, the file system read-only, the
 * pipe closed. The CLI exits with 3. What was written before is whole records, so `--resume`
 * completes the run once the output can be written.
 */
export class OutputError extends FramewiseError {
  /** The errno code (`ENOSPC`, `EROFS`, ...). */
  readonly errno: string;
  constructor(target: string, errno: string, options?: { cause?: unknown; resumable?: boolean }) {
    const then = options?.resumable
      ? ' The records written before are whole; once it can be written, run again with --resume to complete it.'
      : '';
    super('OUTPUT', `Cannot write ${target}: ${WRITE_ERRNOS[errno] ?? errno} (${errno}).${then}`, options);
    this.errno = errno;
  }
  /** `error` as an `OutputError` about `target` when it is a failed write, else undefined. */
  static from(
    target: string,
    error: unknown,
    options: { resumable?: boolean } = {},
  ): OutputError | undefined {
    if (error instanceof OutputError) return error;
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    return typeof code === 'string' && code in WRITE_ERRNOS
      ? new OutputError(target, code, { cause: error, ...options })
      : undefined;
  }
}
