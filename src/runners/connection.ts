/**
 * Redis connections of the runners. Each is an ioredis client of our own, so that it can be
 * dropped at once (BullMQ's `disconnect()` first waits for a connection that may never come)
 * and a Redis that is gone never keeps the process alive retrying. Commands wait through
 * reconnects; the callers bound every wait (`--redis-timeout`).
 */
import { Redis } from 'ioredis';

/** ioredis options: no per-command retry limit (the caller's timeout bounds it), quick reconnects. */
export const REDIS_OPTIONS = { maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(200 * times, 2000) };

const copiesOf = new WeakMap<Redis, Redis[]>();

/**
 * A client for `url`; `onError` sees connection errors (an 'error' event without a listener
 * would crash). BullMQ copies a client it is given (`duplicate()`: QueueEvents reads on a copy)
 * and closes that copy only once it has connected; the copies are kept here so that
 * `dropClient()` ends them too, or a Redis that never answers keeps the process alive.
 */
export function redisClient(url: string, onError: (error: Error) => void): Redis {
  const client = new Redis(url, REDIS_OPTIONS);
  client.on('error', onError);
  const copies: Redis[] = [];
  copiesOf.set(client, copies);
  client.duplicate = (override) => {
    const copy = Redis.prototype.duplicate.call(client, override);
    copy.on('error', onError);
    copies.push(copy);
    return copy;
  };
  return client;
}

/** Drops a client of `redisClient()` and every copy made of it, at once, whatever their state. */
export function dropClient(client: Redis): void {
  for (const copy of copiesOf.get(client) ?? []) copy.disconnect();
  client.disconnect();
}

/**
 * `promise`, or `fallback` after `ms`. The timer keeps the process alive while it runs (while
 * Redis is down nothing else may) and is cleared as soon as the promise settles, so it never
 * holds up the exit.
 */
export function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Whether Redis answers: it counts as reachable while its answers keep coming within `limitMs`
 * of each other. `bounded()` races a wait against that limit.
 */
export class Contact {
  private last = Date.now();
  constructor(
    private readonly limitMs: number,
    /** The error of a Redis silent past the limit. */
    readonly unreachable: () => Error,
  ) {}

  /** An answer came. */
  heard(): void {
    this.last = Date.now();
  }

  /** Milliseconds since the last answer. */
  silentMs(): number {
    return Date.now() - this.last;
  }

  /** True once Redis has been silent past the limit. */
  lost(): boolean {
    return this.silentMs() > this.limitMs;
  }

  /** `promise`, or `unreachable()` once Redis has been silent past the limit; its answer counts as one from Redis. */
  bounded<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setInterval(() => {
        if (this.lost()) {
          clearInterval(timer);
          reject(this.unreachable());
        }
      }, 250);
      promise.then(
        (value) => {
          clearInterval(timer);
          this.heard();
          resolve(value);
        },
        (error) => {
          clearInterval(timer);
          reject(error);
        },
      );
    });
  }
}
