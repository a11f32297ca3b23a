/**
 * `RemoteRunner`: the `EmbedRunner` of a run across machines. It enqueues one BullMQ job per
 * video (or manifest span) on Redis, `framewise worker`s on any number of machines run them
 * with their own local runner, and it yields the results in input order, exactly as the
 * local runner would: the same frames, the same error records, the same progress events
 * (plus the number of workers connected).
 *
 * - A window of jobs is outstanding at a time (it grows with the workers), so Redis holds
 *   the results in flight, never the whole folder's. A result is removed from Redis once the
 *   consumer has taken it (written it) from this generator.
 * - Results arrive through QueueEvents; a slow poll of the job at the head of the window
 *   catches what an event missed, and a job that vanished (Redis restarted without its data)
 *   is enqueued again. Delivery is at least once; the coordinator writes each result once.
 * - Every wait on Redis is bounded by `timeoutMs`: past it the run ends with a `QueueError`,
 *   after what finished was written, so `--resume` carries on.
 * - On abort, the jobs still waiting are removed, no further result is yielded, and the run
 *   rejects with the signal's reason (finished jobs stay in Redis for `--resume`).
 */
import { BackboneRunner } from '../embedding/backbone-runner.js';
import type { BackboneSpec } from '../embedding/backbone-spec.js';
import type { FrameEmbedder } from '../embedding/frame-embedder.js';
import { checkSize } from '../embedding/local-runner.js';
import type { ProgressTracker } from '../embedding/progress.js';
import type { EmbedItem } from '../embedding/runner.js';
import { engineOf, openFrameEmbedder, type BackendRequest, type EngineRequest } from '../engines/index.js';
import type { SeekMode } from '../ingest/decode-plan.js';
import type { Fit, Sampling } from '../ingest/types.js';
import type { ResolvedRemote } from '../embedding/options.js';
import { redactUrl, type JobSettings } from './protocol.js';
import { RemoteRun } from './remote-run.js';

export class RemoteRunner extends BackboneRunner {
  private lastBackend?: string;
  constructor(
    /** Gives the backbone's id, size and D (loaded lazily: it never runs here). */
    embedder: FrameEmbedder,
    /** As `resolveOptions()` gives it: every default filled in. */
    private readonly remote: ResolvedRemote,
    private readonly settings: JobSettings,
  ) {
    super(embedder, settings.size, true /* ownsEmbedder */);
  }

  /** The engine of the last result from a worker (`none` before the first). */
  override get engine(): { name: string; reason: string } {
    const where = `on the workers of queue '${this.remote.queue}' at ${redactUrl(this.remote.redis)}`;
    const { engine } = engineOf(this.lastBackend);
    return engine
      ? { name: engine, reason: where }
      : { name: 'none', reason: `no result from a worker yet (${where})` };
  }
  /** The tfjs backend of the last result from a worker, when tfjs ran it. */
  override get backend(): { name: string; reason: string } | undefined {
    const { backend } = engineOf(this.lastBackend);
    return backend ? { name: backend, reason: this.engine.reason } : undefined;
  }

  protected window<I extends EmbedItem>(
    tracker: ProgressTracker,
    signal: AbortSignal | undefined,
  ): RemoteRun<I> {
    const context = {
      remote: this.remote,
      settings: this.settings,
      backboneId: this.backboneId,
      onBackend: (name: string) => (this.lastBackend = name),
    };
    return new RemoteRun<I>(context, tracker, signal);
  }
}

/** What `createRemoteRunner()` needs: the backbone the workers must run, the settings, the queue. */
export interface RemoteRunnerSettings {
  backbone: BackboneSpec;
  engine?: EngineRequest;
  backend: BackendRequest;
  /** Frame side; must match the backbone's input size. @default the backbone's */
  size: number | undefined;
  sampling: Sampling;
  fit: Fit;
  /** How the workers seek (`exact` or `keyframe`): it travels with each job, as the frames do. @default 'exact' */
  seek?: SeekMode;
  /** The per-video decode timeout the workers apply. @default theirs */
  timeoutMs: number | undefined;
  /** The cache folder (where the backbone's id is remembered), or false. */
  cache: string | false;
  remote: ResolvedRemote;
  signal?: AbortSignal;
}

/**
 * The runner of a run across machines. The backbone is only looked up (its id, size and D;
 * a registry backbone seen before is not even loaded): the workers run it.
 */
export async function createRemoteRunner(settings: RemoteRunnerSettings): Promise<RemoteRunner> {
  const {
    backbone,
    engine,
    backend,
    size,
    sampling,
    fit,
    seek = 'exact',
    timeoutMs,
    cache,
    remote,
    signal,
  } = settings;
  // Resolved by the run options: the engines do not check them again.
  const embedder = await openFrameEmbedder({
    backbone,
    engine: engine ?? 'auto',
    backend,
    cacheDir: cache === false ? undefined : cache,
    workers: 0,
    intraOpThreads: undefined,
    onPrepare: undefined,
    signal,
    lazy: true,
  });
  try {
    const side = checkSize(size, embedder.inputSize);
    return new RemoteRunner(embedder, remote, {
      sampling,
      size: side,
      fit,
      seek,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
  } catch (error) {
    await embedder.dispose();
    throw error;
  }
}
