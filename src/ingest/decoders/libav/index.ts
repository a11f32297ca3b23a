/** The `libav` decoder's registry entry: FFmpeg's libraries in-process through node-av (optional). */
import { debug } from '../../../log.js';
import type { DecoderEntry } from '../../decoders.js';
import type { ClipPlan } from '../../types.js';
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
    const [
      { loadLibav },
      { decodeLibav, StretchOverflow },
      { probeLibav },
      { searchTargets, videoTimeoutMs },
      { packClips, resizeFrame },
    ] = await Promise.all([
      import('./av.js'),
      import('./decode.js'),
      import('./probe.js'),
      import('../../extract-plan.js'),
      import('../../clips.js'),
    ]);
    try {
      await loadLibav();
    } catch (error) {
      throw new Error(`node-av did not load (${(error as Error).message.split('\n')[0]})`, { cause: error });
    }
    return {
      name: 'libav',
      reason,
      probe: (path, { signal, timeoutMs }) => probeLibav(path, signal, timeoutMs),
      async decode(path, plans, o) {
        const info = o.probe ?? (await probeLibav(path, o.signal, o.timeoutMs ?? 30_000));
        // A raw elementary stream carries no timestamps to plan packets by: ffmpeg times it by
        // its frame rate, so the CLI decodes it.
        if (RAW_STREAM.test(info.formatName ?? ''))
          return (await cli.open(reason)).decode(path, plans, { ...o, probe: info });
        const { period, targetOf, targets: searched } = searchTargets(plans, info, o.seek);
        // Keyframe mode: a target per (time, clip span), for the keyframe nearest inside the span.
        const keyed = o.seek === 'keyframe' ? keyframeTargets(plans) : undefined;
        const targets = keyed?.map(([t]) => t) ?? searched;
        const timeoutMs = o.timeoutMs ?? videoTimeoutMs(info.duration);
        const result = await decodeLibav(path, info, targets, {
          signal: o.signal,
          timeoutMs,
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
        if (!result) return (await cli.open(reason)).decode(path, plans, { ...o, probe: info });
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
      },
    };
  },
};

/** The distinct (planned time, clip start, clip end) of `plans`, by time. */
function keyframeTargets(plans: readonly ClipPlan[]): Array<[number, number, number]> {
  const seen = new Map<string, [number, number, number]>();
  for (const p of plans)
    for (const t of p.timestamps) seen.set(`${t}/${p.start}/${p.end}`, [t, p.start, p.end]);
  return [...seen.values()].sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
}
