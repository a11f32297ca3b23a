/**
 * The one way to a decoder: `createDecoder()` picks a `VideoDecoder` by name, as
 * engines/index.ts picks engines. Both give the same `ProbeResult` and `FrameClip`s.
 *
 * - `cli`: ffprobe and one ffmpeg process per video (probe.ts, extract.ts).
 * - `libav`: FFmpeg's libraries in-process through node-av (libav.ts), which decodes only
 *   the packets the plan needs (decode-plan.ts).
 * - `auto`: libav when node-av loads, else cli; the fallback is said once (debuglog, and
 *   the decoder's `reason`, which runs report).
 *
 * node-av is imported only when libav is asked for (or `auto` tries it).
 */
import { FramewiseError } from '../errors.js';
import { debug } from '../log.js';
import { searchTargets } from './extract-plan.js';
import { extractCli, type ResolvedExtractOptions } from './extract.js';
import { decodeLibav, loadLibav, probeLibav, type DecodeStats } from './libav.js';
import { packClips, resizeFrame } from './clips.js';
import { probeCli } from './probe.js';
import type { ClipPlan, FrameClip, ProbeResult } from './types.js';

/** The decoder asked for. */
export type DecoderRequest = 'auto' | 'libav' | 'cli';
export const DECODER_REQUESTS: readonly DecoderRequest[] = ['auto', 'libav', 'cli'];

export interface VideoDecoder {
  readonly name: 'libav' | 'cli';
  /** Why this decoder: what was asked, and for `auto` what happened. */
  readonly reason: string;
  probe(path: string, options: { signal?: AbortSignal; timeoutMs: number }): Promise<ProbeResult>;
  decode(path: string, plans: ClipPlan[], options: ResolvedExtractOptions): Promise<FrameClip[]>;
}

const cli = (reason: string): VideoDecoder => ({
  name: 'cli',
  reason,
  probe: (path, options) => probeCli(path, options),
  decode: (path, plans, options) => extractCli(path, plans, options, (p) => probeCli(p, { signal: options.signal, timeoutMs: options.timeoutMs ?? 30_000 })),
});

/** Demuxers of raw elementary streams (`.h264`, `.hevc`, `.m4v`, `.mpv`, ...): no container, no timestamps. */
const RAW_STREAM = /^(h264|hevc|vvc|m4v|mpegvideo|cavsvideo|avs2|avs3|vc1|obu)$/;

/** Called with each libav decode's counts (benchmarks). */
let statsListener: ((path: string, stats: DecodeStats) => void) | undefined;
/** Benchmarks: receive each libav decode's counts (packets fed, frames decoded). */
export function onDecodeStats(listener: ((path: string, stats: DecodeStats) => void) | undefined): void {
  statsListener = listener;
}

const libav = (reason: string): VideoDecoder => ({
  name: 'libav',
  reason,
  probe: (path, { signal, timeoutMs }) => probeLibav(path, signal, timeoutMs),
  async decode(path, plans, o) {
    const info = o.probe ?? (await probeLibav(path, o.signal, o.timeoutMs ?? 30_000));
    // A raw elementary stream carries no timestamps to plan packets by: ffmpeg times it by
    // its frame rate, so the CLI decodes it.
    if (RAW_STREAM.test(info.formatName ?? '')) return cli(reason).decode(path, plans, { ...o, probe: info });
    const { period, targetOf, targets } = searchTargets(plans, info);
    const timeoutMs = o.timeoutMs ?? 60_000 + 2000 * info.duration;
    const result = await decodeLibav(path, info, targets, {
      signal: o.signal,
      timeoutMs,
      // 0 (FFmpeg's choice) means one thread per core; libav decodes run beside each other, so 1.
      threads: o.threads === 0 ? 1 : o.threads,
      seek: o.seek,
      size: o.size,
      fit: o.fit,
      resize: (raw, width, height, rotation) => resizeFrame(raw, width, height, o.size, o.fit, rotation),
      onStats: statsListener && ((stats) => statsListener?.(path, stats)),
    });
    return packClips(path, plans, result.frames, {
      size: o.size,
      seek: o.seek,
      period,
      targetOf,
      damaged: result.failure !== undefined || result.decodeErrors.length > 0,
      warnings: result.failure ? [`libav stopped part-way (${result.failure})`] : [],
      decodeErrors: result.decodeErrors,
      decoder: 'libav',
      failure: result.failure,
    });
  },
});

let auto: Promise<VideoDecoder> | undefined;
let autoOff: string | undefined;

/** The decoder for `request`. `libav` rejects when node-av does not load. */
export async function createDecoder(request: DecoderRequest = 'auto'): Promise<VideoDecoder> {
  if (request === 'cli') return cli('asked for');
  if (request === 'libav') {
    try {
      await loadLibav();
    } catch (error) {
      throw new FramewiseError('FFMPEG_NOT_FOUND', `The libav decoder needs the optional dependency node-av, which did not load (${(error as Error).message.split('\n')[0]}); use --decoder cli`, { cause: error });
    }
    return libav('asked for');
  }
  // FRAMEWISE_LIBAV may change between calls (tests): the memo holds for one setting.
  const off = process.env.FRAMEWISE_LIBAV ?? '';
  if (autoOff !== off) auto = undefined;
  autoOff = off;
  auto ??= loadLibav().then(
    () => libav('auto: node-av loaded'),
    (error: unknown) => {
      const why = `node-av did not load (${(error as Error).message.split('\n')[0]}); decoding with the ffmpeg CLI`;
      debug('decoder auto: %s', why);
      return cli(`auto: ${why}`);
    },
  );
  return auto;
}
