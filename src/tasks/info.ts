/**
 * `datasetInfo()`: a look at a dataset before training, by probing every video (no decode):
 * videos per label (seconds per label for a frame dataset), total and median duration,
 * resolutions, frame rates and codecs as counts, and the files that will fail, with their
 * codes. Probes run `concurrency` at a time, in a p-queue with backpressure.
 */
import PQueue from 'p-queue';
import { FramewiseError } from '../errors.js';
import { probe } from '../ingest/probe.js';
import type { ProbeResult } from '../ingest/types.js';
import { checkSignal, invalid, isPlainObject, LIMITS, oneOf, positiveInteger } from '../validate.js';
import { entriesOf, type Inputs } from './inputs.js';
import { decoderRequests, type DecoderRequest } from '../ingest/decoders.js';
import type { HeadMode } from '../model/model-info.js';

export interface DatasetInfoOptions {
  signal?: AbortSignal;
  /**
   * Probes at once.
   * @default 2
   */
  concurrency?: number;
  /** Who probes: `libav` in-process, `cli` ffprobe, `auto` libav when it loads. @default 'auto' */
  decoder?: DecoderRequest;
  /** Called after each probe, with how many are done and how many there are. */
  onProbe?: (done: number, total: number) => void;
}

export interface DatasetInfo {
  /** Videos found (manifest rows, files). */
  videos: number;
  /** Videos that probed. */
  probed: number;
  /** `clip`: labels per video; `frame`: segments; `none`: no labels. */
  labelling: HeadMode | 'none';
  /** Videos per label (`clip`), or seconds per label (`frame`), sorted by label. */
  labels: Record<string, number>;
  /** Over the videos that probed (a manifest row's span counts its span), in seconds; median null when none did. */
  duration: { total: number; median: number | null };
  /** `WIDTHxHEIGHT` (as displayed) → videos, most first. */
  resolutions: Record<string, number>;
  /** Average frame rate (3 decimals) → videos, most first. */
  frameRates: Record<string, number>;
  /** Video codec → videos, most first. */
  codecs: Record<string, number>;
  /** The videos whose probe fails, in dataset order: these will fail in any run. */
  failures: Array<{ path: string; code: string; message: string }>;
}

/** Probes every video of `inputs` (files, folders, manifests) and sums them up. */
export async function datasetInfo(inputs: Inputs, options: DatasetInfoOptions = {}): Promise<DatasetInfo> {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const signal = checkSignal('signal', options.signal);
  const concurrency = positiveInteger('concurrency', options.concurrency ?? 2, LIMITS.parallel);
  const decoder =
    options.decoder === undefined ? undefined : oneOf('decoder', options.decoder, decoderRequests());
  const entries = await entriesOf(inputs, { signal });
  const probes: Array<ProbeResult | FramewiseError> = new Array(entries.length);
  const queue = new PQueue({ concurrency });
  let done = 0;
  for (let i = 0; i < entries.length; i++) {
    signal?.throwIfAborted();
    // Backpressure: a folder of any size holds a few probes in flight.
    await queue.onSizeLessThan(concurrency);
    void queue.add(async () => {
      try {
        probes[i] = await probe(entries[i].path, { signal, decoder });
      } catch (error) {
        if (!(error instanceof FramewiseError) || error.code === 'FFMPEG_NOT_FOUND') throw error;
        probes[i] = error;
      }
      options.onProbe?.(++done, entries.length);
    });
  }
  await queue.onIdle();
  signal?.throwIfAborted();

  const frame = entries.some((e) => e.segments && e.segments.length > 0);
  const labels: Record<string, number> = {};
  for (const e of entries) {
    if (frame) for (const s of e.segments ?? []) labels[s.label] = (labels[s.label] ?? 0) + (s.end - s.start);
    else if (e.label !== undefined) labels[e.label] = (labels[e.label] ?? 0) + 1;
  }
  const ok = probes
    .map((p, i) => [p, entries[i]] as const)
    .filter((x): x is readonly [ProbeResult, (typeof entries)[number]] => !(x[0] instanceof FramewiseError));
  const durations = ok
    .map(([p, e]) => Math.max(0, Math.min(e.end ?? Infinity, p.duration) - (e.start ?? 0)))
    .sort((a, b) => a - b);
  const mid = durations.length >> 1;
  const round3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    videos: entries.length,
    probed: ok.length,
    labelling: frame ? 'frame' : Object.keys(labels).length > 0 ? 'clip' : 'none',
    labels: Object.fromEntries(
      Object.keys(labels)
        .sort()
        .map((l) => [l, round3(labels[l])]),
    ),
    duration: {
      total: round3(durations.reduce((a, b) => a + b, 0)),
      median:
        durations.length === 0
          ? null
          : round3(durations.length % 2 ? durations[mid] : (durations[mid - 1] + durations[mid]) / 2),
    },
    resolutions: countsOf(ok.map(([p]) => `${p.width}x${p.height}`)),
    frameRates: countsOf(ok.map(([p]) => String(round3(p.avgFrameRate)))),
    codecs: countsOf(ok.map(([p]) => p.codec)),
    failures: probes.flatMap((p, i) =>
      p instanceof FramewiseError ? [{ path: entries[i].path, code: p.code, message: p.message }] : [],
    ),
  };
}

/** Value → how often, most first (ties in order of the value). */
function countsOf(values: readonly string[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return Object.fromEntries(
    [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
  );
}
