/**
 * Renders progress events on stderr: a one-line bar redrawn in place on a TTY, plain lines
 * every few seconds otherwise, nothing with `--quiet`. stdout is never touched, so
 * `--out -` keeps it clean for data.
 */
import type { ProgressCallback, ProgressEvent } from '../index.js';
import { intFlag, isAbort, remoteFlags, type Flags } from './common.js';
import { handleInterrupts } from './interrupt.js';

export interface Renderer {
  update(event: ProgressEvent): void;
  /** Shows a phase before the first event (`preparing mobilenet_v2 for ONNX Runtime, once`). */
  phase(message: string): void;
  /** Ends a TTY bar with a newline. */
  done(): void;
}

function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '--';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Every video of the run has its plan: the clips to do are known. */
const allPlanned = (e: ProgressEvent): boolean => e.videosPlanned >= e.videosTotal && e.clipsPlanned > 0;

/** How much of the run is done, 0 to 1: by clips once every plan is known (a long video moves the bar), else by videos. */
export function fractionDone(e: ProgressEvent): number {
  if (allPlanned(e)) return Math.min(1, e.clipsDone / e.clipsPlanned);
  return e.videosTotal > 0 ? e.videosDone / e.videosTotal : 0;
}

/** One line of text for an event. */
export function formatProgress(e: ProgressEvent): string {
  const parts = [
    `${e.videosDone}/${e.videosTotal} videos`,
    allPlanned(e) ? `${e.clipsDone}/${e.clipsPlanned} clips` : `${e.clipsDone} clips`,
    `${e.clipsPerSecond.toFixed(2)} clips/s`,
    `${e.framesPerSecond.toFixed(1)} frames/s`,
    `ETA ${duration(e.etaMs)}`,
    `${duration(e.elapsedMs)} elapsed`,
  ];
  if (e.cacheHits) parts.push(`${e.cacheHits} cached`);
  if (e.failures) parts.push(`${e.failures} failed`);
  if (e.videosSkipped) parts.push(`${e.videosSkipped} skipped`);
  if (e.queue) {
    if (e.queue.unreachableMs > 0)
      parts.push(`Redis not answering for ${duration(e.queue.unreachableMs)}, reconnecting`);
    else
      parts.push(
        e.queue.workers === 0
          ? 'no worker connected: start `framewise worker --redis URL`'
          : `${e.queue.workers} worker${e.queue.workers === 1 ? '' : 's'}`,
      );
    const wait = e.queue.waitingOn;
    if (wait) {
      const when =
        e.queue.workers === 0
          ? 'no worker is connected to hand it on'
          : wait.handedOnInMs > 0
            ? `it is handed on within ${duration(wait.handedOnInMs)} (--stall-timeout)`
            : 'it is handed on at the next stalled check';
      parts.push(`waiting on ${wait.path}: its worker ${wait.worker} stopped answering; ${when}`);
    }
  }
  return parts.join(' | ');
}

export function createRenderer(
  options: { quiet?: boolean; stream?: NodeJS.WriteStream; intervalMs?: number } = {},
): Renderer {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { update() {}, phase() {}, done() {} };
  if (stream.isTTY) {
    let drawn = false;
    return {
      update(e) {
        const width = 24;
        const ratio = fractionDone(e);
        const filled = Math.round(ratio * width);
        const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
        const line = `${bar} ${formatProgress(e)}`.slice(0, Math.max(20, (stream.columns ?? 100) - 1));
        stream.write(`\r\x1b[2K${line}`);
        drawn = true;
      },
      phase(message) {
        stream.write(`\r\x1b[2Kframewise: ${message}`);
        drawn = true;
      },
      done() {
        if (drawn) stream.write('\n');
        drawn = false;
      },
    };
  }
  const interval = options.intervalMs ?? 5000;
  // The first line one interval in: a line at the start says only `0/N videos ... ETA --`.
  let last = Date.now();
  return {
    update(e) {
      // The summary that follows says what the final event would.
      if (e.final) return;
      const now = Date.now();
      if (now - last < interval) return;
      last = now;
      stream.write(`framewise: ${formatProgress(e)}\n`);
    },
    phase(message) {
      stream.write(`framewise: ${message}\n`);
    },
    done() {},
  };
}

/** A renderer that also feeds a coordinator's `/metrics`; `close()` stops serving them. */
export interface MetricsRenderer extends Renderer {
  close(): Promise<void>;
}

/** `--metrics-port` (with `--redis`): the coordinator's metrics while the command runs, fed by its progress events. */
export async function withMetrics(flags: Flags, renderer: Renderer): Promise<MetricsRenderer> {
  const port = intFlag(flags, 'metricsPort', 0);
  const remote = remoteFlags(flags); // refuses --metrics-port without --redis
  if (port === undefined || !remote) return { ...renderer, close: async () => undefined };
  const { startCoordinatorMetrics } = await import('../tasks/index.js');
  const server = await startCoordinatorMetrics(port, remote);
  if (flags.quiet !== true)
    process.stderr.write(`framewise: metrics at http://0.0.0.0:${server.port}/metrics\n`);
  return {
    update(event) {
      server.observe(event);
      renderer.update(event);
    },
    phase: (message) => renderer.phase(message),
    done: () => renderer.done(),
    close: () => server.close(),
  };
}

/** The event of a run that did nothing: the summary when no event came. */
export const NOTHING_DONE: ProgressEvent = {
  videosDone: 0,
  videosTotal: 0,
  videosSkipped: 0,
  clipsDone: 0,
  framesDone: 0,
  videosPlanned: 0,
  clipsPlanned: 0,
  videosDecoded: 0,
  framesEmbedded: 0,
  cacheHits: 0,
  failures: 0,
  failuresByCode: {},
  videosWithWarnings: 0,
  elapsedMs: 0,
  videosPerSecond: 0,
  clipsPerSecond: 0,
  framesPerSecond: 0,
  etaMs: 0,
  final: true,
};

/** The closing summary: counts, and failures by code. */
export function formatSummary(e: ProgressEvent, extra = ''): string {
  const codes = Object.entries(e.failuresByCode)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, n]) => `${code}: ${n}`)
    .join(', ');
  const ok = e.videosDone - e.failures;
  const lines = [
    `framewise: ${ok} ok, ${e.failures} failed${codes ? ` (${codes})` : ''}` +
      `${e.videosWithWarnings ? `, ${e.videosWithWarnings} with warnings (see \`warnings\` in their records)` : ''}` +
      `${e.videosSkipped ? `, ${e.videosSkipped} skipped (already in the output)` : ''}` +
      `, ${e.cacheHits} from cache, ${e.videosDecoded} decoded, ${(e.elapsedMs / 1000).toFixed(1)}s${extra}`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The run protocol of the commands that write one record per video (`embed`, `classify`):
 * Ctrl-C handling, progress on stderr, a resource (pipeline or classifier) opened under the
 * interrupt's signal, the records written, then everything closed — the output `sink` last
 * but always — the summary printed (always when something failed) and the exit code given:
 * 130 when interrupted, 1 when some videos failed, 0 otherwise. A phase the library announces
 * (the backbone's first conversion) shows on the progress line, and the summary's time counts
 * it: the time is the command's, from here to the end.
 */
export async function runRecords<R extends { close(): Promise<void> }>(
  flags: Flags,
  sink: { close(): Promise<void> },
  open: (signal: AbortSignal, onPrepare: (message: string) => void) => Promise<R>,
  write: (resource: R, signal: AbortSignal, onProgress: ProgressCallback) => Promise<void>,
): Promise<number> {
  const started = performance.now();
  const interrupt = handleInterrupts();
  let renderer: MetricsRenderer;
  try {
    renderer = await withMetrics(flags, createRenderer({ quiet: flags.quiet === true }));
  } catch (error) {
    await sink.close();
    interrupt.dispose();
    throw error;
  }
  let resource: R;
  try {
    resource = await open(interrupt.signal, (message) => renderer.phase(message));
  } catch (error) {
    await sink.close();
    await renderer.close();
    interrupt.dispose();
    if (isAbort(error)) return 130;
    throw error;
  }
  // Said once, when the run has chosen its decoder (the pipeline opens its runner at the first
  // embed()): `auto` found no node-av and decodes with the ffmpeg CLI.
  let decoderSaid = false;
  const sayDecoder = (): void => {
    const decoder = (resource as { decoder?: { name: string; reason: string } }).decoder;
    if (decoderSaid || !decoder) return;
    decoderSaid = true;
    if (flags.quiet !== true && decoder.name === 'cli' && decoder.reason.startsWith('auto'))
      process.stderr.write(`framewise: ${decoder.reason}\n`);
  };
  // The run's last event (its final one) is the summary.
  let last: ProgressEvent | undefined;
  const onProgress = (event: ProgressEvent): void => {
    sayDecoder();
    last = event;
    renderer.update(event);
  };
  let interrupted = false;
  try {
    await write(resource, interrupt.signal, onProgress);
  } catch (error) {
    if (!(interrupt.signal.aborted && isAbort(error))) throw error;
    interrupted = true;
  } finally {
    renderer.done();
    await sink.close();
    await resource.close();
    await renderer.close();
    interrupt.dispose();
  }
  const summary = { ...(last ?? NOTHING_DONE), elapsedMs: performance.now() - started };
  if (flags.quiet !== true || summary.failures > 0 || summary.videosWithWarnings > 0)
    process.stderr.write(formatSummary(summary, interrupted ? ' (interrupted)' : ''));
  if (interrupted) return 130;
  return summary.failures > 0 ? 1 : 0;
}
