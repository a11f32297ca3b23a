/**
 * Redis connections of the runners. Each is an ioredis client of our own, so that it can be
 * dropped at once (BullMQ's `disconnect()` first waits for a connection that may never come)
 * and a Redis that is gone never keeps the process alive retrying. Commands wait through
 * reconnects; the callers bound every wait (`--redis-timeout`).
 */
import { Redis } from 'ioredis';

/** ioredis options: no per-command retry limit (the caller's timeout bounds it), quick reconnects. */
export const REDIS_OPTIONS = { maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(200 * times, 2000) };

/** A client for `url`; `onError` sees connection errors (an 'error' event without a listener would crash). */
export function redisClient(url: string, onError: (error: Error) => void): Redis {
  const client = new Redis(url, REDIS_OPTIONS);
  client.on('error', onError);
  return client;
}
