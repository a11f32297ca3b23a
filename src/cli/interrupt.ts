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
      timer = setTimeout(() => process.exit(130), options.graceMs ?? 1800);
      timer.unref();
    } else {
      process.exit(130);
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
