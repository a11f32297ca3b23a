/** The `remote` runner's registry entry: BullMQ on Redis; its client loads only when a run has `remote`. */
import type { RunnerEntry } from './entry.js';

export const remote: RunnerEntry = {
  help: 'across machines: jobs on a BullMQ queue in Redis, run by `framewise worker`s',
  takes: (options) => options.remote !== undefined,
  async open(o, signal) {
    const { createRemoteRunner } = await import('./remote-runner.js');
    const { backbone, engine, backend, size, sampling, fit, seek, timeoutMs, cache } = o;
    return createRemoteRunner({
      backbone,
      engine,
      backend,
      size,
      sampling,
      fit,
      seek,
      timeoutMs,
      cache,
      remote: o.remote!,
      signal,
    });
  },
};
