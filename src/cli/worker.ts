/**
 * `framewise worker --redis URL`: takes embedding jobs from the queue until SIGINT or
 * SIGTERM, then finishes the jobs in hand (up to `--grace`; a second signal hands them back
 * at once) and exits 130. Redis gone past `--redis-timeout`: exit 1. It opens only files under
 * its `--root`s and URLs on its `--allow-host`s (see runners/confine.ts).
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import type { WorkerHandle, WorkerOptions, WorkerStats } from '../tasks/index.js';
import { resolve } from 'node:path';
import {
  backboneFlags,
  intFlag,
  isAbort,
  listFlag,
  millisecondsFlag,
  pipelineOptionsFrom,
  remoteFlags,
  type Flags,
} from './common.js';

export function register(cli: CAC): void {
  const command = cli
    .command('worker', 'Take embedding jobs from a Redis queue (runs across machines; start one per machine)')
    .option(
      '--stall-timeout <seconds>',
      'A worker silent this long is taken for dead and its job handed on (default: 30)',
    )
    .option(
      '--max-stalls <n>',
      'Times a job may be handed on after its worker died before it is a WORKER_FAILED record (default: 1)',
    )
    .option(
      '--grace <seconds>',
      'On SIGINT/SIGTERM, how long the jobs in hand may take to finish before they are handed back (default: 60)',
    )
    .option(
      '--root <dir>',
      'Required, repeatable: jobs may name only files whose real path lies under one of these folders',
    )
    .option(
      '--allow-host <host>',
      'Repeatable: jobs may name http(s) URLs on this host (or *.example.com for its subdomains); none by default',
    )
    .option(
      '--allow-private-network',
      'Let URLs reach loopback, private, link-local and other non-public addresses (default: refused)',
    )
    .option('--max-job-bytes <n>', 'Job data larger than this is refused unparsed (default: 65536)')
    .option('--jobs <n>', 'Jobs (videos) at once, each with its own decode (default: 2)');
  backboneFlags(command);
  command
    .example('framewise worker --redis redis://queue-host:6379 --root /srv/videos')
    .example(
      'framewise worker --redis redis://queue-host:6379/2 --queue nightly --jobs 4 --root /mnt/share --allow-host media.example.com',
    )
    .action((flags: Flags) => runWorker(flags));
}

async function runWorker(flags: Flags): Promise<number> {
  const options = workerOptions(flags);
  const graceMs = millisecondsFlag(flags, 'grace') ?? 60_000;
  const quiet = flags.quiet === true;
  const say = (line: string): void => {
    if (!quiet) process.stderr.write(`framewise worker: ${line}\n`);
  };
  if (options.roots.includes('/'))
    say(
      'warning: --root / lets anyone who can write to the queue read every file this user can read; give the video folders instead',
    );
  const { startWorker } = await import('../tasks/index.js');
  const signals = new SignalStop(say, graceMs);
  const log = new StatsLog(say);
  try {
    let handle: WorkerHandle;
    try {
      handle = await startWorker({
        ...options,
        signal: signals.loading.signal,
        onProgress: (s) => log.update(s),
      });
    } catch (error) {
      if (signals.loading.signal.aborted && isAbort(error)) return 130;
      throw error;
    }
    const ran = handle.backend ?? handle.engine; // the tfjs backend when tfjs runs, else the engine
    say(
      `${handle.name}: backbone ${handle.backboneId} on ${ran.name} (${ran.reason}); taking jobs from queue '${options.queue ?? 'framewise'}'`,
    );
    if (handle.metricsPort !== undefined) say(`metrics at http://0.0.0.0:${handle.metricsPort}/metrics`);
    signals.started(handle);
    const stats = await closedOrExit(handle);
    say(`stopped: ${log.line(stats)}`);
    return 130;
  } finally {
    log.stop();
    signals.dispose();
  }
}

/** `startWorker()`'s options from the flags, but for the signal and the progress. */
function workerOptions(flags: Flags): WorkerOptions {
  const remote = remoteFlags(flags);
  if (!remote)
    throw new UsageError(
      '`--redis <url>` is required: the Redis that the coordinating `framewise embed|classify --redis` enqueues on',
    );
  const { backbone, normalize, engine, backend, threads, decoder, batch, workers, cache, timeoutMs } =
    pipelineOptionsFrom(flags);
  const jobs = jobsFlag(flags);
  const stallTimeoutMs = millisecondsFlag(flags, 'stallTimeout');
  const maxStalls = intFlag(flags, 'maxStalls', 0);
  const roots = listFlag(flags, 'root').map((root) => resolve(root));
  if (roots.length === 0) {
    throw new UsageError(
      '`--root <dir>` is required: a worker opens only files under its roots (repeat it for several folders), since anyone who can write to the queue chooses the paths; `--root /` allows every file',
    );
  }
  const allowHosts = listFlag(flags, 'allowHost');
  const allowPrivateNetwork = flags.allowPrivateNetwork === true;
  const maxJobBytes = intFlag(flags, 'maxJobBytes');
  return {
    ...{
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
      jobs,
    },
    ...{
      redis: remote.redis,
      queue: remote.queue,
      redisTimeoutMs: remote.timeoutMs,
      redisCa: remote.redisCa,
      strictRedis: remote.strictRedis,
    },
    ...{
      stallTimeoutMs,
      maxStalls,
      roots,
      allowHosts,
      allowPrivateNetwork,
      maxJobBytes,
      metricsPort: intFlag(flags, 'metricsPort', 0),
    },
  };
}

/**
 * `--jobs`, or `--concurrency`, its old spelling for a worker (a run's `--concurrency` counts
 * decodes, a worker's counts jobs): that one still works, with a notice on stderr.
 */
function jobsFlag(flags: Flags): number | undefined {
  const jobs = intFlag(flags, 'jobs', 1);
  const old = intFlag(flags, 'concurrency', 1);
  if (old === undefined) return jobs;
  if (jobs !== undefined) throw new UsageError('`--jobs` and `--concurrency` conflict: give `--jobs` only');
  process.stderr.write(
    'framewise worker: `--concurrency` is the old spelling of `--jobs` for a worker; use `--jobs`\n',
  );
  return old;
}

/** The worker's stats when it stopped; Redis gone, the exit must not wait for its clients, which may still be retrying. */
async function closedOrExit(handle: WorkerHandle): Promise<WorkerStats> {
  try {
    return await handle.closed;
  } catch (error) {
    setTimeout(() => process.exit(1), 2000).unref();
    throw error;
  }
}

/**
 * SIGINT and SIGTERM: while the backbone loads, the first aborts the loading (a second exits);
 * then the first lets the jobs in hand finish (up to the grace), and a second hands them back.
 */
class SignalStop {
  readonly loading = new AbortController();
  private handle: WorkerHandle | undefined;
  private count = 0;
  private readonly onSignal = (): void => this.signal();

  constructor(
    private readonly say: (line: string) => void,
    private readonly graceMs: number,
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** The worker runs: a signal that came while it loaded stops it now. */
  started(handle: WorkerHandle): void {
    this.handle = handle;
    if (this.count > 0) void handle.close();
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  private signal(): void {
    this.count += 1;
    const handle = this.handle;
    if (!handle) {
      this.loading.abort(new DOMException('Interrupted', 'AbortError'));
      if (this.count > 1) process.exit(130);
      return;
    }
    if (this.count === 1) {
      this.say(
        `stopping: no new jobs; the jobs in hand finish (up to ${this.graceMs / 1000} s; a second Ctrl-C hands them back now)`,
      );
      void handle.close();
      setTimeout(() => void handle.close({ handBack: true }), this.graceMs).unref();
    } else {
      this.say('handing the jobs in hand back to the queue');
      void handle.close({ handBack: true });
    }
  }
}

/** The worker's counts: a line every 10 s while they change, and its problems as they come. */
class StatsLog {
  private stats: WorkerStats = { done: 0, errors: 0, forbidden: 0, refused: 0, handedBack: 0, active: 0 };
  private said: WorkerStats | undefined;
  private lastProblem: string | undefined;
  private readonly started = Date.now();
  private readonly ticker: NodeJS.Timeout;

  constructor(private readonly say: (line: string) => void) {
    this.ticker = setInterval(() => {
      if (this.said && JSON.stringify(this.said) === JSON.stringify(this.stats)) return;
      this.said = this.stats;
      say(this.line(this.stats));
    }, 10_000);
    this.ticker.unref();
  }

  update(stats: WorkerStats): void {
    this.stats = stats;
    if (stats.lastProblem && stats.lastProblem !== this.lastProblem) this.say(stats.lastProblem);
    this.lastProblem = stats.lastProblem;
  }

  line(s: WorkerStats): string {
    const rate = s.done / Math.max((Date.now() - this.started) / 1000, 1e-3);
    return `${s.done} done (${s.errors} error records, ${s.forbidden} forbidden), ${s.refused} refused or failed, ${s.handedBack} handed back, ${s.active} in hand, ${rate.toFixed(2)} videos/s`;
  }

  stop(): void {
    clearInterval(this.ticker);
  }
}
