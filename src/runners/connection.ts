/**
 * Redis connections of the runners. Each is an ioredis client of our own, so that it can be
 * dropped at once (BullMQ's `disconnect()` first waits for a connection that may never come)
 * and a Redis that is gone never keeps the process alive retrying. Commands wait through
 * reconnects; the callers bound every wait (`--redis-timeout`).
 */
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { QueueError, UsageError } from '../errors.js';
import { debug } from '../log.js';

/** ioredis options: no per-command retry limit (the caller's timeout bounds it), quick reconnects. */
export const REDIS_OPTIONS = {
  maxRetriesPerRequest: null,
  retryStrategy: (times: number) => Math.min(200 * times, 2000),
};

/** How to reach Redis beyond its URL. */
export interface RedisConnectOptions {
  /** A PEM file: the CA of a `rediss://` server's certificate. @default Node's CA list */
  redisCa?: string;
}

/** The ioredis options of every connection: `REDIS_OPTIONS`, and the CA of a TLS Redis (a `rediss://` URL turns TLS on). */
export function connectionOptions(
  connect: RedisConnectOptions = {},
): typeof REDIS_OPTIONS & Pick<RedisOptions, 'tls'> {
  if (!connect.redisCa) return { ...REDIS_OPTIONS };
  let ca: Buffer;
  try {
    ca = readFileSync(connect.redisCa);
  } catch (error) {
    throw new UsageError(
      `The Redis CA file ${connect.redisCa} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): --redis-ca`,
    );
  }
  return { ...REDIS_OPTIONS, tls: { ca } };
}

/** Redis URLs whose eviction policy was warned about in this process: once each. */
const warned = new Set<string>();

/**
 * BullMQ is correct only on a Redis that never evicts its keys (`maxmemory-policy noeviction`:
 * an evicted job or lock is lost work, or work done twice). Anything else is a warning (a Node
 * process warning, code `FRAMEWISE_REDIS_EVICTION`), or with `strict` a `QueueError`. A Redis
 * that will not say (no INFO for this user) is let through.
 */
export async function checkEviction(client: Redis, where: string, strict: boolean): Promise<void> {
  let policy: string | undefined;
  try {
    policy = /^maxmemory_policy:(\S+)/m.exec(await client.info('memory'))?.[1];
  } catch (error) {
    debug('redis: INFO memory: %s', (error as Error).message);
  }
  if (policy === undefined || policy === 'noeviction') return;
  const message = `Redis at ${where} has maxmemory-policy ${policy}: under memory pressure it may evict BullMQ's jobs and locks (lost or repeated work); set \`maxmemory-policy noeviction\` (BullMQ's only safe setting)`;
  if (strict) throw new QueueError(`${message}. --strict-redis refuses it.`);
  if (warned.has(where)) return;
  warned.add(where);
  process.emitWarning(message, { code: 'FRAMEWISE_REDIS_EVICTION' });
}

const copiesOf = new WeakMap<Redis, Redis[]>();

/**
 * A client for `url`; `onError` sees connection errors (an 'error' event without a listener
 * would crash). BullMQ copies a client it is given (`duplicate()`: QueueEvents reads on a copy)
 * and closes that copy only once it has connected; the copies are kept here so that
 * `dropClient()` ends them too, or a Redis that never answers keeps the process alive.
 */
export function redisClient(
  url: string,
  onError: (error: Error) => void,
  connect: RedisConnectOptions = {},
): Redis {
  const client = new Redis(url, connectionOptions(connect));
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
