/**
 * `framewise status --redis URL [--queue NAME] [--json]`: what a queue holds and who works on
 * it, read once: job counts by state, the oldest waiting job's age, the connected workers
 * (host, pid, backbone, decoder, concurrency, uptime, videos done, recent videos/s) and the
 * coordinators waiting on the queue. Exit 0; Redis unreachable past `--redis-timeout`: exit 1.
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import type { QueueStatus } from '../tasks/index.js';
import { remoteFlags, type Flags } from './common.js';

export function register(cli: CAC): void {
  cli
    .command(
      'status',
      'Show a queue: job counts, the oldest waiting job, the workers and coordinators connected',
    )
    .option('--redis <url>', 'The Redis that holds the queue (redis://host:6379[/db], or rediss://)')
    .option('--queue <name>', 'The queue name (default: framewise)')
    .option('--redis-timeout <seconds>', 'How long to wait for an unreachable Redis (default: 60)')
    .option(
      '--redis-ca <file>',
      'With a rediss:// URL: the PEM file of the CA that signed the server certificate',
    )
    .option('--json', 'One JSON object on stdout instead of text')
    .example('framewise status --redis redis://queue-host:6379')
    .example('framewise status --redis redis://queue-host:6379 --queue nightly --json')
    .action((flags: Flags) => runStatus(flags));
}

async function runStatus(flags: Flags): Promise<number> {
  const remote = remoteFlags(flags);
  if (!remote) throw new UsageError('`--redis <url>` is required: the Redis that holds the queue');
  const { queueStatus } = await import('../tasks/index.js');
  const status = await queueStatus({
    redis: remote.redis,
    queue: remote.queue,
    timeoutMs: remote.timeoutMs,
    redisCa: remote.redisCa,
  });
  process.stdout.write(flags.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return 0;
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** The text form: a line of counts, then one line per worker and per coordinator. */
export function formatStatus(status: QueueStatus, now = Date.now()): string {
  const { counts } = status;
  const lines = [
    `queue '${status.queue}' at ${status.redis}`,
    `jobs: ${counts.waiting} waiting, ${counts.active} active, ${counts.completed} completed, ${counts.failed} failed, ${counts.delayed} delayed` +
      (status.oldestWaitingMs === null ? '' : `; the oldest waiting for ${seconds(status.oldestWaitingMs)}`),
    `workers: ${status.workers.length}${status.workers.length === 0 ? ' (start `framewise worker --redis URL --root DIR`)' : ''}`,
  ];
  for (const { name, presence: p } of status.workers) {
    if (!p) {
      lines.push(`  ${name}: connected, no report yet`);
      continue;
    }
    lines.push(
      `  ${name}: host ${p.host}, pid ${p.pid}, backbone ${p.backbone} on ${p.engine}, decoder ${p.decoder}, jobs ${p.concurrency}, ` +
        `up ${seconds(now - p.startedAt)}, ${p.done} videos done (${p.errors} error records), ${p.active} in hand, ${p.recentPerSecond.toFixed(2)} videos/s over the last minute`,
    );
  }
  lines.push(`coordinators: ${status.coordinators.length}`);
  for (const c of status.coordinators) {
    const wait = c.waitingOn
      ? `; waiting on ${c.waitingOn.path}, whose worker ${c.waitingOn.worker} stopped answering`
      : '';
    lines.push(
      `  ${c.name}: host ${c.host}, pid ${c.pid}, ${c.videosDone}/${c.videosTotal} videos, up ${seconds(now - c.startedAt)}${wait}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
