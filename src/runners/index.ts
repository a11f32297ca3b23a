/**
 * Runs across machines, as the library exports them. The queue client (BullMQ, ioredis) is
 * loaded only when a worker starts or a run has `remote`, so a local run never loads it.
 */
import type { RemoteSettings } from '../embedding/options.js';
import type { QueueStatus, QueueStatusOptions } from './status.js';
import type { CoordinatorMetricsServer } from './metrics.js';
import type { WorkerHandle, WorkerOptions } from './worker.js';

export type { RemoteSettings } from '../embedding/options.js';
export type { WorkerHandle, WorkerOptions, WorkerStats } from './worker.js';
export type { QueueStatus, QueueStatusOptions, JobState } from './status.js';
export type { WorkerPresence, CoordinatorPresence, StalledWait } from './presence.js';
export type { ConfineOptions } from './confine.js';
export type { CoordinatorMetricsServer } from './metrics.js';

/** Loads the backbone and takes embedding jobs from the queue until `close()`; see `framewise worker`. */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const { startWorker: start } = await import('./worker.js');
  return start(options);
}

/** The queue's state once: job counts, the oldest waiting job, workers and coordinators; see `framewise status`. */
export async function queueStatus(options: QueueStatusOptions): Promise<QueueStatus> {
  const { queueStatus: read } = await import('./status.js');
  return read(options);
}

/** Serves a coordinator's Prometheus metrics on `port` (`--metrics-port`); feed it the run's progress events. */
export async function startCoordinatorMetrics(
  port: number,
  remote: RemoteSettings,
): Promise<CoordinatorMetricsServer> {
  const { startCoordinatorMetrics: start } = await import('./metrics.js');
  return start(port, remote);
}
