/**
 * Ctrl-C for long commands. The first SIGINT aborts the run's signal: no new work starts,
 * ffmpeg children are killed, the results already written stay whole, and the process exits with 130
 * (forced after `graceMs` if the run is slow to stop). A second SIGINT exits at once.
 */
export interface Interrupt {
  readonly signal: AbortSignal;
  readonly interrupted: boolean;
  /** Removes the handlers. */
  dispose(): void;
}

let stdoutGone = false;

/**
 * The reader of stdout went away (`| head`): the run stops as on Ctrl-C (decode workers are
 * never cut off inside a native call, which aborts the process), and the exit code is 141.
 */
export function stdoutClosed(): void {
  if (stdoutGone) return;
  stdoutGone = true;
  if (process.listenerCount('SIGINT') === 0) process.exit(141);
  process.emit('SIGINT');
}

/** Whether stdout's reader went away: what fails after it (a write's EPIPE) is not an error to print. */
export function stdoutWasClosed(): boolean {
  return stdoutGone;
}

/** The exit code of a run that was stopped: 141 once stdout's reader went away, else 130. */
export function stoppedCode(): number {
  return stdoutGone ? 141 : 130;
}

/**
 * Until a command installs its own handler (`handleInterrupts`, the worker's), SIGINT and
 * SIGTERM exit at once with 130: the start-up (the heavy imports, the checks) has nothing to
 * wind down, and the exit hooks remove the output's lock and kill ffmpeg children. Without it
 * the signal's default action would end the process without them, and with no exit code.
 */
export function exitOnEarlySignals(): void {
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.on(name, () => {
      if (process.listenerCount(name) === 1) process.exit(stoppedCode());
    });
  }
}

export function handleInterrupts(options: { graceMs?: number; onFirst?: () => void } = {}): Interrupt {
  const controller = new AbortController();
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  const onSignal = (): void => {
    count += 1;
    if (count === 1) {
      options.onFirst?.();
      controller.abort(new DOMException('Interrupted', 'AbortError'));
      // Force the exit if the run has not wound down in time.
      timer = setTimeout(() => process.exit(stoppedCode()), options.graceMs ?? 1800);
      timer.unref();
    } else {
      process.exit(stoppedCode());
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    get interrupted() {
      return count > 0;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (timer) clearTimeout(timer);
    },
  };
}
