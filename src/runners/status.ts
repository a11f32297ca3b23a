/**
 * `queueStatus()`: what an operator sees of a queue (`framewise status`): the job counts by
 * state, the age of the oldest waiting job, the workers BullMQ sees connected with what each
 * says of itself, and the coordinators waiting on the queue. It reads what BullMQ keeps (job
 * counts, the wait list's oldest job, `CLIENT LIST` for the workers) and the presence hashes;
 * it scans no keys and writes nothing.
 */
import { Queue } from 'bullmq';
import { dropClient, redisClient, within, type RedisConnectOptions } from './connection.js';
import {
  checkQueueName,
  checkRedisCa,
  checkRedisUrl,
  DEFAULT_QUEUE,
  DEFAULT_REDIS_TIMEOUT_MS,
  redactUrl,
} from './options.js';
import { readPresence, workerNames, type CoordinatorPresence, type WorkerPresence } from './presence.js';
import { QueueError } from '../errors.js';
import { positiveInteger, LIMITS } from '../validate.js';

/** A job state counted, in BullMQ's words. */
export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed';
/** The job states counted, in this order. */
export const JOB_STATES: readonly JobState[] = ['waiting', 'active', 'completed', 'failed', 'delayed'];

export interface QueueStatusOptions extends RedisConnectOptions {
  /** The Redis that holds the queue. */
  redis: string;
  /** @default 'framewise' */
  queue?: string;
  /** How long to wait for Redis. @default 60000 */
  timeoutMs?: number;
}

export interface QueueStatus {
  queue: string;
  /** The Redis URL, its password hidden. */
  redis: string;
  counts: Record<JobState, number>;
  /** Milliseconds since the oldest waiting job was added, or null when none waits. */
  oldestWaitingMs: number | null;
  /** The workers connected; `presence` is what each said of itself (absent for a worker that is not framewise's, or just started). */
  workers: Array<{ name: string; presence?: WorkerPresence }>;
  coordinators: CoordinatorPresence[];
}

/** Reads the queue's state once. */
export async function queueStatus(options: QueueStatusOptions): Promise<QueueStatus> {
  const redis = checkRedisUrl('redis', options.redis);
  const name = options.queue === undefined ? DEFAULT_QUEUE : checkQueueName('queue', options.queue);
  const timeoutMs =
    options.timeoutMs === undefined
      ? DEFAULT_REDIS_TIMEOUT_MS
      : positiveInteger('timeoutMs', options.timeoutMs, LIMITS.timeoutMs);
  let failure: Error | undefined;
  const client = redisClient(redis, (error) => (failure = error), {
    redisCa: checkRedisCa('redisCa', options.redisCa, redis),
  });
  const queue = new Queue(name, { connection: client });
  queue.on('error', () => undefined);
  try {
    const read = (async (): Promise<QueueStatus> => {
      const counts = (await queue.getJobCounts(...JOB_STATES)) as Record<JobState, number>;
      const [oldest] = await queue.getJobs(['waiting'], 0, 0, true /* asc: the oldest first */);
      const connected = workerNames(await queue.getWorkers());
      const workers = await readPresence<WorkerPresence>(client, name, 'workers');
      const coordinators = await readPresence<CoordinatorPresence>(client, name, 'coordinators');
      return {
        queue: name,
        redis: redactUrl(redis),
        counts,
        oldestWaitingMs: oldest ? Math.max(0, Date.now() - oldest.timestamp) : null,
        workers: connected.map((worker) => ({
          name: worker,
          ...(workers.has(worker) ? { presence: workers.get(worker) } : {}),
        })),
        coordinators: [...coordinators.values()],
      };
    })();
    const status = await within(read, timeoutMs, undefined);
    if (!status)
      throw new QueueError(
        `Redis at ${redactUrl(redis)} has not answered for ${Math.round(timeoutMs / 1000)} s${failure ? ` (${failure.message})` : ''}`,
      );
    return status;
  } finally {
    await within(
      queue.close().catch(() => undefined),
      1000,
      undefined,
    );
    dropClient(client);
  }
}
