/**
 * Runs across machines, as the library exports them. The queue client (BullMQ, ioredis) is
 * loaded only when a worker starts or a run has `remote`, so a local run never loads it.
 */
import type { WorkerHandle, WorkerOptions } from './worker.js';

export type { RemoteSettings } from './options.js';
export type { WorkerHandle, WorkerOptions, WorkerStats } from './worker.js';

/** Loads the backbone and takes embedding jobs from the queue until `close()`; see `framewise worker`. */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const { startWorker: start } = await import('./worker.js');
  return start(options);
}
