/**
 * The run options resolved: `resolveOptions()` checks `PipelineOptions` (their type is the
 * contract in `embedding/options.ts`) once, at the boundary, before any process is spawned or
 * any tensor allocated, and the resolved object is handed down. The checks of a run across
 * machines are here too, so that the tasks, the runners and the CLI share one check of each.
 * The samplers, fits, engines and backends are checked against their registries, which is
 * why this file sits with the runners, above the engines, and not in `embedding/`.
 */
import { availableParallelism } from 'node:os';
import { parseSampling, validateSampling } from '../ingest/sampling.js';
import { FIT_NAMES, type Sampling } from '../ingest/types.js';
import { decoderRequests } from '../ingest/decoders.js';
import { parseBackboneSpec, validateNormalization } from '../embedding/backbone-spec.js';
import type { PipelineOptions, ResolvedOptions, ResolvedRemote } from '../embedding/options.js';
import { defaultCacheDir } from '../fs.js';
import { UsageError } from '../errors.js';
import { debug } from '../log.js';
import { ENGINES } from '../engines/index.js';
import { BACKENDS } from '../tfjs/backends.js';
import {
  boolean,
  invalid,
  isPlainObject,
  LIMITS,
  nonNegativeInteger,
  oneOf,
  positiveInteger,
} from '../validate.js';
import { SEEK_MODES } from '../ingest/decode-plan.js';

/** The queue name when none is given. */
export const DEFAULT_QUEUE = 'framewise';
/** How Redis waits are bounded when the caller gives no timeout. */
export const DEFAULT_REDIS_TIMEOUT_MS = 60_000;

/** Validates a sampling string or object and sets its `frames` (T). */
export function normalizeSampling(value: unknown, frames: number | undefined, field = 'sampling'): Sampling {
  if (value === undefined) return { kind: 'uniform', frames: frames ?? 16 };
  if (typeof value === 'string') return parseSampling(value, frames ?? 16, field);
  if (!isPlainObject(value)) throw invalid(field, 'a sampling string or object', value);
  return validateSampling({ ...value, frames: frames ?? value.frames ?? 16 }, field);
}

/** `remote`: a Redis URL, and optionally a queue name and a timeout. */
function validateRemote(value: unknown): ResolvedRemote {
  if (!isPlainObject(value))
    throw invalid('remote', 'an object { redis, queue?, timeoutMs?, redisCa?, strictRedis? }', value);
  const redis = checkRedisUrl('remote.redis', value.redis);
  return {
    redis,
    redisCa: checkRedisCa('remote.redisCa', value.redisCa, redis),
    strictRedis: value.strictRedis === undefined ? false : boolean('remote.strictRedis', value.strictRedis),
    queue: value.queue === undefined ? DEFAULT_QUEUE : checkQueueName('remote.queue', value.queue),
    timeoutMs:
      value.timeoutMs === undefined
        ? DEFAULT_REDIS_TIMEOUT_MS
        : positiveInteger('remote.timeoutMs', value.timeoutMs, LIMITS.timeoutMs),
  };
}

/** Marks what `resolveOptions()` gave; spreading the object keeps it (a symbol key is copied). */
const RESOLVED = Symbol('framewise.resolvedOptions');

/**
 * Fills defaults and validates; throws TypeError / UsageError before any work. Options are
 * resolved once, at the boundary: an object this gave (or a copy with other fields added, a
 * `signal` or an `onPrepare`) is taken as it is, without a second check; a copy whose own
 * fields were changed is resolved anew.
 */
export function resolveOptions(options: PipelineOptions = {}): ResolvedOptions {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const done = (options as { [RESOLVED]?: ResolvedOptions })[RESOLVED];
  if (done && unchanged(options, done)) {
    const onPrepare = options.onPrepare ?? done.onPrepare;
    if (onPrepare !== undefined && typeof onPrepare !== 'function')
      throw invalid('onPrepare', 'a function', onPrepare);
    return onPrepare === done.onPrepare ? done : brand({ ...done, onPrepare });
  }
  const resolved = brand(resolveFresh(options));
  debug(
    'options: resolved (backbone %o, engine %s, backend %s)',
    resolved.backbone,
    resolved.engine,
    resolved.backend,
  );
  return resolved;
}

function brand(resolved: ResolvedOptions): ResolvedOptions {
  return Object.freeze(Object.assign(resolved, { [RESOLVED]: resolved }));
}

/** True when `options` holds every resolved field as `resolveOptions()` gave it (`onPrepare` may differ). */
function unchanged(options: PipelineOptions, done: ResolvedOptions): boolean {
  const given = options as Record<string, unknown>;
  return Object.entries(done).every(([key, value]) => key === 'onPrepare' || given[key] === value);
}

function resolveFresh(options: PipelineOptions): ResolvedOptions {
  const frames =
    options.frames === undefined ? undefined : positiveInteger('frames', options.frames, LIMITS.frames);
  const sampling = normalizeSampling(options.sampling, frames);
  const sizeOption =
    options.size === undefined ? undefined : positiveInteger('size', options.size, LIMITS.size);
  const normalize =
    options.normalize === undefined ? undefined : validateNormalization('normalize', options.normalize);
  const backbone = parseBackboneSpec('backbone', options.backbone, { inputSize: sizeOption, normalize });
  const cache = options.cache === undefined ? defaultCacheDir() : options.cache;
  const concurrency =
    options.concurrency === undefined
      ? Math.max(1, Math.min(2, availableParallelism()))
      : positiveInteger('concurrency', options.concurrency, LIMITS.parallel);
  if (cache !== false && (typeof cache !== 'string' || cache.length === 0))
    throw invalid('cache', 'a folder path or false', cache);
  if (options.onPrepare !== undefined && typeof options.onPrepare !== 'function')
    throw invalid('onPrepare', 'a function', options.onPrepare);
  return {
    backbone,
    frames: sampling.frames,
    size: sizeOption,
    fit: options.fit === undefined ? 'cover' : oneOf('fit', options.fit, FIT_NAMES),
    sampling,
    engine: options.engine === undefined ? 'auto' : ENGINES.check('engine', options.engine, { auto: true }),
    backend:
      options.backend === undefined ? 'auto' : BACKENDS.check('backend', options.backend, { auto: true }),
    concurrency,
    threads:
      options.threads === undefined ? 0 : nonNegativeInteger('threads', options.threads, LIMITS.parallel),
    decoder: options.decoder === undefined ? 'auto' : oneOf('decoder', options.decoder, decoderRequests()),
    seek: options.seek === undefined ? 'exact' : oneOf('seek', options.seek, SEEK_MODES),
    batch: options.batch === undefined ? 4 : positiveInteger('batch', options.batch, LIMITS.batch),
    workers:
      options.workers === undefined
        ? undefined
        : nonNegativeInteger('workers', options.workers, LIMITS.parallel),
    cache,
    timeoutMs:
      options.timeoutMs === undefined
        ? undefined
        : positiveInteger('timeoutMs', options.timeoutMs, LIMITS.timeoutMs),
    remote: options.remote === undefined ? undefined : validateRemote(options.remote),
    onPrepare: options.onPrepare,
  };
}

/** A `redis://` or `rediss://` URL whose db, if any, is a number; a UsageError naming `field` otherwise. */
export function checkRedisUrl(field: string, value: unknown): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  // ioredis reads the path as the db number; anything else would reach Redis as `SELECT NaN`.
  const db = url?.pathname ?? '';
  if (
    !url ||
    (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ||
    !url.hostname ||
    !/^\/?\d*$/.test(db)
  ) {
    throw new UsageError(
      `Expected a Redis URL (redis://host:6379[/db], the db a number) for \`${field}\` but received ${JSON.stringify(redactUrl(String(value)))}`,
    );
  }
  return String(value);
}

/** `redisCa`: a file path, only with a `rediss://` URL (read when the connection opens). */
export function checkRedisCa(field: string, value: unknown, redis: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'a PEM file path', value);
  if (!redis.startsWith('rediss://'))
    throw new UsageError(`\`${field}\` is for a TLS Redis: give a rediss:// URL`);
  return value;
}

/** The URL with any password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** A BullMQ queue name: letters, digits, `-`, `_` and `.`. */
export function checkQueueName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(value)) {
    throw new UsageError(
      `Expected a queue name (letters, digits, '-', '_', '.') for \`${field}\` but received ${JSON.stringify(value)}`,
    );
  }
  return value;
}
