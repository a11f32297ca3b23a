/**
 * What each worker and coordinator says about itself, for `framewise status`, the metrics
 * and a coordinator waiting on a job: one Redis hash per queue and kind, beside BullMQ's own
 * keys (`bull:<queue>:framewise:workers`, `bull:<queue>:framewise:coordinators`), a field
 * per process (`framewise@host:pid`) holding JSON, rewritten every few seconds. Readers take
 * the connected workers from BullMQ (`getWorkers()`: the Redis clients it names) and look
 * their fields up; nothing scans keys. A field is removed when its process stops; a killed
 * process's field is removed by the next reader once it is old.
 */
import type { Redis } from 'ioredis';

/** BullMQ's key prefix: framewise never sets another, so `--queue` is the queue name within it. */
export const KEY_PREFIX = 'bull';
/** A field not rewritten for this long belongs to a process that is gone. */
export const PRESENCE_STALE_MS = 60_000;

export interface WorkerPresence {
  /** `framewise@host:pid`: BullMQ's worker name, and each job's `processedBy`. */
  name: string;
  host: string;
  pid: number;
  backbone: string;
  engine: string;
  decoder: string;
  concurrency: number;
  /** Its `--stall-timeout`: how long its job's lock lasts, and how often it checks for stalled jobs. */
  stallTimeoutMs: number;
  startedAt: number;
  updatedAt: number;
  /** Videos done (results, error records included), of which error records. */
  done: number;
  errors: number;
  /** Jobs in hand now. */
  active: number;
  /** Videos per second over the last minute. */
  recentPerSecond: number;
}

export interface CoordinatorPresence {
  name: string;
  host: string;
  pid: number;
  startedAt: number;
  updatedAt: number;
  videosDone: number;
  videosTotal: number;
  /** Why it waits, when the next result in input order is a stalled job's. */
  waitingOn?: StalledWait;
}

/** The job at the head of a coordinator's window, whose worker stopped answering. */
export interface StalledWait {
  path: string;
  jobId: string;
  worker: string;
  /** At most this long before another worker's stalled check hands the job on (0: any moment now). */
  handedOnInMs: number;
}

export type PresenceKind = 'workers' | 'coordinators';

export function presenceKey(queue: string, kind: PresenceKind): string {
  return `${KEY_PREFIX}:${queue}:framewise:${kind}`;
}

/** Writes this process's field; the hash expires a day after the last write (a queue left alone). */
export async function writePresence(
  client: Redis,
  queue: string,
  kind: PresenceKind,
  value: WorkerPresence | CoordinatorPresence,
): Promise<void> {
  const key = presenceKey(queue, kind);
  await client
    .multi()
    .hset(key, value.name, JSON.stringify(value))
    .expire(key, 24 * 3600)
    .exec();
}

export async function removePresence(
  client: Redis,
  queue: string,
  kind: PresenceKind,
  name: string,
): Promise<void> {
  await client.hdel(presenceKey(queue, kind), name);
}

/**
 * Every field of one kind, parsed (a field that is not ours is left out), but those older than
 * the stale limit: with `prune` (a worker's writes), they are removed too.
 */
export async function readPresence<T extends WorkerPresence | CoordinatorPresence>(
  client: Redis,
  queue: string,
  kind: PresenceKind,
  prune = false,
): Promise<Map<string, T>> {
  const key = presenceKey(queue, kind);
  const fields = await client.hgetall(key);
  const found = new Map<string, T>();
  const stale: string[] = [];
  for (const [name, text] of Object.entries(fields)) {
    try {
      const value = JSON.parse(text) as T;
      if (Date.now() - value.updatedAt > PRESENCE_STALE_MS) stale.push(name);
      else found.set(name, value);
    } catch {
      stale.push(name);
    }
  }
  if (prune && stale.length > 0) await client.hdel(key, ...stale);
  return found;
}

/** The worker names BullMQ sees connected (`getWorkers()`'s client names end in `:w:<name>`). */
export function workerNames(clients: Array<Record<string, string>>): string[] {
  const names = clients
    .map((c) => /:w:(.+)$/.exec(c.rawname ?? '')?.[1])
    .filter((n): n is string => n !== undefined);
  return [...new Set(names)];
}
