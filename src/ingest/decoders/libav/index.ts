/** The `libav` decoder's registry entry: FFmpeg's libraries in-process through node-av (optional). */
import { debug } from '../../../log.js';
import type { DecodeOptions, DecoderEntry, VideoDecoder } from '../../decoders.js';
import type { ClipPlan, FrameClip, ProbeResult } from '../../types.js';
import { openVideo } from '../open-video.js';
import { cli } from '../cli/index.js';
import type { DecodeStats } from './av.js';

/** Demuxers of raw elementary streams (`.h264`, `.hevc`, `.m4v`, `.mpv`, ...): no container, no timestamps. */
const RAW_STREAM = /^(h264|hevc|vvc|m4v|mpegvideo|cavsvideo|avs2|avs3|vc1|obu)$/;

/** Called with each libav decode's counts (benchmarks). */
let statsListener: ((path: string, stats: DecodeStats) => void) | undefined;
/** Benchmarks: receive each libav decode's counts (packets fed, frames decoded). */
export function onDecodeStats(listener: ((path: string, stats: DecodeStats) => void) | undefined): void {
  statsListener = listener;
}

export const libav: DecoderEntry = {
  help: 'in-process FFmpeg through node-av, only the packets the plan needs',
  async open(reason) {
    const [{ loadLibav }, { probeLibav }, fallback] = await Promise.all([
      import('./av.js'),
      import('./probe.js'),
      // A raw stream, or a GOP longer than a stretch holds, is decoded by the CLI: resolved here, once.
      cli.open(reason),
    ]);
    try {
      await loadLibav();
    } catch (error) {
      throw new Error(`node-av did not load (${(error as Error).message.split('\n')[0]})`, { cause: error });
    }
    const decode = await decoding(fallback);
    return {
      name: 'libav',
      reason,
      open: (path, options) =>
        openVideo(
          path,
          options,
          (p, o) => probeLibav(p, o.signal, o.timeoutMs),
          (metadata, plans, o) => decode(path, metadata, plans, o),
        ),
    };
  },
};

/** The libav decode of one open video, handing it to `fallback` (the CLI) where libav cannot plan it. */
async function decoding(
  fallback: VideoDecoder,
): Promise<(path: string, info: ProbeResult, plans: ClipPlan[], o: DecodeOptions) => Promise<FrameClip[]>> {
  const [{ decodeLibav, StretchOverflow }, { searchTargets, videoTimeoutMs }, { packClips, resizeFrame }] =
    await Promise.all([import('./decode.js'), import('../../extract-plan.js'), import('../../clips.js')]);
  const byCli = async (path: string, info: ProbeResult, plans: ClipPlan[], o: DecodeOptions) => {
    const video = await fallback.open(path, {
      signal: o.signal,
      timeoutMs: o.timeoutMs ?? 30_000,
      probe: info,
    });
    try {
      return await video.decode(plans, o);
    } finally {
      await video.close();
    }
  };
  return async (path, info, plans, o) => {
    // A raw elementary stream carries no timestamps to plan packets by: ffmpeg times it by
    // its frame rate, so the CLI decodes it.
    if (RAW_STREAM.test(info.formatName ?? '')) return byCli(path, info, plans, o);
    const { period, targetOf, targets: searched } = searchTargets(plans, info, o.seek);
    // Keyframe mode: a target per (time, clip span), for the keyframe nearest inside the span.
    const keyed = o.seek === 'keyframe' ? keyframeTargets(plans) : undefined;
    const targets = keyed?.map(([t]) => t) ?? searched;
    const result = await decodeLibav(path, info, targets, {
      signal: o.signal,
      timeoutMs: o.timeoutMs ?? videoTimeoutMs(info.duration),
      // 0 (FFmpeg's choice) means one thread per core; libav decodes run beside each other, so 1.
      threads: o.threads === 0 ? 1 : o.threads,
      seek: o.seek,
      spans: keyed?.map(([, start, end]) => [start, end] as const),
      size: o.size,
      fit: o.fit,
      resize: (raw, width, height, rotation) => resizeFrame(raw, width, height, o.size, o.fit, rotation),
      onStats: statsListener && ((stats) => statsListener?.(path, stats)),
    }).catch((error: unknown) => {
      if (!(error instanceof StretchOverflow)) throw error;
      debug('libav: %s; decoding with the CLI', error.message);
      return undefined;
    });
    if (!result) return byCli(path, info, plans, o);
    const clips = await packClips(path, plans, result.frames, {
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
    return clips.map((clip) => ({ ...clip, decoder: 'libav' }));
  };
}

/** The distinct (planned time, clip start, clip end) of `plans`, by time. */
function keyframeTargets(plans: readonly ClipPlan[]): Array<[number, number, number]> {
  const seen = new Map<string, [number, number, number]>();
  for (const p of plans)
    for (const t of p.timestamps) seen.set(`${t}/${p.start}/${p.end}`, [t, p.start, p.end]);
  return [...seen.values()].sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
}
