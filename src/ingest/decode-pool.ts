/**
 * A small pool of decode workers (`worker_threads`): each video's whole decode runs in a
 * worker, through the same `VideoDecoder` as on the main thread (decoders.ts), unchanged.
 *
 * Why: the libav decoder is a chain of async native calls (read, send, receive, convert,
 * resize), one in flight at a time, each a round trip to its thread's event loop. On the main
 * thread every round trip waits behind whatever holds the loop, so two decodes could not fill
 * two cores. In a worker the loop has nothing else to do. The native calls still run on
 * libuv's pool, which is one per process (see `libuvPoolSize`).
 *
 * The workers are the one thread pool (thread-pool.ts: ordered, bounded, aborted by message,
 * never terminated). One video per worker at a time, and at most `workers` workers: the
 * memory held is what the same number of decodes held on the main thread. Frames come back
 * as transferred ArrayBuffers (each clip's `data`), never copied. A worker that dies fails
 * its video with an `FFMPEG` error record.
 *
 * The worker file is `dist/ingest/decode-worker.js`; from TypeScript source (vitest) the
 * build output is used, as for the tfjs pool.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { FfmpegError, FramewiseError } from '../errors.js';
import { debug } from '../log.js';
import { ThreadPool } from '../thread-pool.js';
import { chunkClips, joinClips } from './chunk-plan.js';
import { invalid } from '../validate.js';
import type { DecodeOptions, DecoderName, VideoDecoder } from './decoders.js';
import { loadLibav } from './decoders/libav/av.js';
import type { ClipPlan, FrameClip, ProbeResult } from './types.js';

/** The options a worker receives: everything but the signal (not cloneable), and the video's metadata. */
export type WorkerExtractOptions = Omit<DecodeOptions, 'signal'> & { probe: ProbeResult };

/** One video to decode, as a decode worker receives it. */
export interface DecodeTask {
  decoder: DecoderName;
  path: string;
  plans: ClipPlan[];
  options: WorkerExtractOptions;
}

/** The note a decode worker sends once it has given FFmpeg's log callback back (decode-worker.ts). */
export const LOG_NOTE = 'log';

/** Options of {@link DecodePool}. */
export interface DecodePoolOptions {
  /** Worker threads, each decoding one video at a time. @default the cores (`os.availableParallelism()`) */
  workers?: number;
}

/** FFmpeg's log callback, set again in this thread once a worker has reset it (see decode-worker.ts): to debuglog, as loadLibav() sets it. */
async function takeLog(): Promise<void> {
  const av = await loadLibav().catch(() => undefined);
  av?.Log.setCallback((_level, message) => debug('libav: %s', message.trim()));
}

/** Where the compiled worker lives: beside this module in dist, or dist when run from src. */
function workerScript(): URL {
  const beside = new URL('./decode-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL('../../dist/ingest/decode-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new FramewiseError(
    'FFMPEG_NOT_FOUND',
    `the decode worker ${fileURLToPath(built)} is missing; run \`npm run build\` first`,
  );
}

/** The decode workers of one run. See the module comment. */
export class DecodePool {
  readonly size: number;
  /** Decodes sent to the workers so far: a chunked video's chunks count one each. */
  tasks = 0;
  private readonly pool: ThreadPool<DecodeTask, FrameClip[]>;

  constructor(options: DecodePoolOptions = {}) {
    this.size = Math.max(1, options.workers ?? availableParallelism());
    // sharp and node-av are loaded here first: their libraries must outlive every worker (sharp's docs,
    // "Worker threads"). Never rejects: a module that does not load here fails in the worker too, as that video's error.
    const before = Promise.all([import('sharp').catch(() => undefined), loadLibav().catch(() => undefined)]);
    this.pool = new ThreadPool<DecodeTask, FrameClip[]>({
      name: 'decode',
      script: workerScript(),
      size: this.size,
      before,
      onNote: (note) => {
        if (note === LOG_NOTE) void before.then(takeLog);
      },
      died: (why, task) =>
        new FfmpegError({ command: `decode worker ${task.path}`, exitCode: null, signal: null, stderr: why }),
    });
  }

  /** The frames of `plans` from `path`, decoded by `decoder` in a worker; rejects at once on abort. */
  decode(
    decoder: DecoderName,
    path: string,
    plans: ClipPlan[],
    options: DecodeOptions & { probe: ProbeResult },
  ): Promise<FrameClip[]> {
    const { signal, ...rest } = options;
    this.tasks++;
    return this.pool.run({ decoder, path, plans, options: rest }, { signal });
  }

  /** Closes the workers, letting each end by itself (see `ThreadPool.close`). */
  close(waitMs = 2000): Promise<Array<number | null>> {
    return this.pool.close(waitMs);
  }
}

/**
 * `inner` with its decodes run on `pool`'s workers: a video opens on the calling thread (its
 * metadata read there), and each decode goes to a worker with that metadata, where the
 * worker's own decoder of the same name opens it again without reading anything. A libav
 * decode in `exact` mode with workers to spare (more workers than decodes in flight) is cut
 * into chunks by time (chunk-plan.ts), one worker each, and joined back: one long video
 * decodes on every worker, with the same frames.
 */
export function pooledDecoder(inner: VideoDecoder, pool: DecodePool): VideoDecoder {
  /** Decodes in flight: the workers beyond them take chunks of a video (chunk-plan.ts). */
  let inFlight = 0;
  return {
    name: inner.name,
    reason: inner.reason,
    async open(path, options) {
      const video = await inner.open(path, options);
      const run = (plans: ClipPlan[], o: DecodeOptions): Promise<FrameClip[]> =>
        pool.decode(inner.name, path, plans, { ...o, probe: video.metadata });
      return {
        path,
        metadata: video.metadata,
        async decode(plans, o) {
          inFlight++;
          try {
            // libav's exact frames are the same from any decoder; keyframe mode and the CLI are not chunked.
            const parts = inner.name === 'libav' && o.seek === 'exact' ? Math.floor(pool.size / inFlight) : 1;
            const chunks = chunkClips(plans, parts);
            if (chunks.length === 1) return await run(plans, o);
            debug('decode %s: %d chunks on %d workers', path, chunks.length, pool.size);
            return joinClips(plans, chunks, await Promise.all(chunks.map((c) => run(c.plans, o))));
          } finally {
            inFlight--;
          }
        },
        close: () => video.close(),
      };
    },
    close: async () => void (await pool.close()),
  };
}

/**
 * Decode workers for a run: for `libav`, one per video decoding at once (`concurrency`) up to
 * the cores; none for `cli`, whose ffmpeg processes already run off this thread.
 * `FRAMEWISE_DECODE_WORKERS` overrides it (0: decode on the main thread), a lever for
 * measuring (`npm run bench:threads`).
 */
export function decodeWorkers(
  decoder: DecoderName,
  concurrency: number,
  env: NodeJS.ProcessEnv = process.env,
  cores = availableParallelism(),
): number {
  const given = env.FRAMEWISE_DECODE_WORKERS?.trim();
  if (given) {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0)
      throw invalid('FRAMEWISE_DECODE_WORKERS', 'a non-negative integer', given);
    return n;
  }
  return decoder === 'libav' ? Math.max(1, Math.min(concurrency, cores)) : 0;
}

/**
 * The libuv pool size a process decoding with `workers` workers wants: one thread for each
 * worker's libav call and one for its sharp resize, and never fewer than libuv's 4. It takes
 * effect only through `UV_THREADPOOL_SIZE` set before the pool first starts, and an ES module
 * loader starts it while it reads the entry's imports: so the environment, or a CommonJS
 * entry's first line (bin/framewise.cjs), never a module body.
 */
export function libuvPoolSize(workers = availableParallelism()): number {
  return Math.max(4, 2 * workers);
}
