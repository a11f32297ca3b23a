/**
 * `framewise worker --redis URL`: takes embedding jobs from the queue until SIGINT or
 * SIGTERM, then finishes the jobs in hand (up to `--grace`; a second signal hands them back
 * at once) and exits 130. Redis gone past `--redis-timeout`: exit 1.
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import type { WorkerStats } from '../tasks/index.js';
import { backboneFlags, intFlag, isAbort, millisecondsFlag, pipelineOptionsFrom, remoteFlags, type Flags } from './common.js';

export function register(cli: CAC): void {
  const command = cli
    .command('worker', 'Take embedding jobs from a Redis queue (runs across machines; start one per machine)')
    .option('--stall-timeout <seconds>', 'A worker silent this long is taken for dead and its job handed on (default: 30)')
    .option('--max-stalls <n>', 'Times a job may be handed on after its worker died before it is a WORKER_FAILED record (default: 1)')
    .option('--grace <seconds>', 'On SIGINT/SIGTERM, how long the jobs in hand may take to finish before they are handed back (default: 60)');
  backboneFlags(command);
  command
    .example('framewise worker --redis redis://queue-host:6379')
    .example('framewise worker --redis redis://queue-host:6379/2 --queue nightly --concurrency 4')
    .action((flags: Flags) => runWorker(flags));
}

async function runWorker(flags: Flags): Promise<number> {
  const remote = remoteFlags(flags);
  if (!remote) throw new UsageError('`--redis <url>` is required: the Redis that the coordinating `framewise embed|classify --redis` enqueues on');
  const options = pipelineOptionsFrom(flags);
  const stallTimeoutMs = millisecondsFlag(flags, 'stallTimeout');
  const maxStalls = intFlag(flags, 'maxStalls', 0);
  const graceMs = millisecondsFlag(flags, 'grace') ?? 60_000;
  const quiet = flags.quiet === true;
  const say = (line: string): void => {
    if (!quiet) process.stderr.write(`framewise worker: ${line}\n`);
  };

  const { startWorker } = await import('../tasks/index.js');
  const loading = new AbortController();
  let handle: Awaited<ReturnType<typeof startWorker>> | undefined;
  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    if (!handle) {
      loading.abort(new DOMException('Interrupted', 'AbortError'));
      if (signals > 1) process.exit(130);
      return;
    }
    if (signals === 1) {
      say(`stopping: no new jobs; the jobs in hand finish (up to ${graceMs / 1000} s; a second Ctrl-C hands them back now)`);
      void handle.close();
      setTimeout(() => void handle?.close({ handBack: true }), graceMs).unref();
    } else {
      say('handing the jobs in hand back to the queue');
      void handle.close({ handBack: true });
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let lastProblem: string | undefined;
    const started = Date.now();
    const line = (s: WorkerStats): string =>
      `${s.done} done (${s.errors} error records), ${s.refused} refused or failed, ${s.handedBack} handed back, ${s.active} in hand, ${(s.done / Math.max((Date.now() - started) / 1000, 1e-3)).toFixed(2)} videos/s`;
    let stats: WorkerStats = { done: 0, errors: 0, refused: 0, handedBack: 0, active: 0 };
    // A line every 10 s while the counts change.
    let said: WorkerStats | undefined;
    const ticker = setInterval(() => {
      if (said && JSON.stringify(said) === JSON.stringify(stats)) return;
      said = stats;
      say(line(stats));
    }, 10_000);
    ticker.unref();
    try {
      const { backbone, normalize, engine, backend, threads, decoder, batch, workers, cache, timeoutMs, concurrency } = options;
      handle = await startWorker({
        backbone,
        normalize,
        engine,
        backend,
        threads,
        decoder,
        batch,
        workers,
        cache,
        timeoutMs,
        concurrency,
        redis: remote.redis,
        queue: remote.queue,
        redisTimeoutMs: remote.timeoutMs,
        stallTimeoutMs,
        maxStalls,
        signal: loading.signal,
        onProgress: (s) => {
          stats = s;
          if (s.lastProblem && s.lastProblem !== lastProblem) say(s.lastProblem);
          lastProblem = s.lastProblem;
        },
      });
    } catch (error) {
      if (loading.signal.aborted && isAbort(error)) return 130;
      throw error;
    }
    say(`${handle.name}: backbone ${handle.backboneId} on ${handle.backend.name} (${handle.backend.reason}); taking jobs from queue '${remote.queue ?? 'framewise'}'`);
    if (signals > 0) void handle.close();
    try {
      stats = await handle.closed;
    } catch (error) {
      // Redis gone: its clients may still be retrying; the exit must not wait for them.
      setTimeout(() => process.exit(1), 2000).unref();
      throw error;
    } finally {
      clearInterval(ticker);
    }
    say(`stopped: ${line(stats)}`);
    return 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
