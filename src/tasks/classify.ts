/**
 * `loadClassifier()`: a trained model folder plus the runner that embeds its inputs. For each video
 * the engine gives frame embeddings [clips, T, D] (cache first), the head gives class
 * probabilities per clip (clip mode) or per frame (frame mode), and the clips are
 * aggregated into a video-level label.
 */
import { ModelError, UsageError } from '../errors.js';
import type { ProgressCallback } from '../embedding/progress.js';
import {
  isErrorRecord,
  spanOf,
  withSpan,
  type EmbedRunner,
  type ErrorRecord,
  type VideoFrames,
} from '../embedding/runner.js';
import { aggregateScores, argmax, topK, type LabelScore } from '../evaluation/aggregate.js';
import { segmentsFromFrames, timeShares, UNKNOWN_LABEL, type ScoredSegment } from '../evaluation/timeline.js';
import type { Fit, Sampling } from '../ingest/types.js';
import type { HeadClassifier as Head, ModelInfo } from '../model/types.js';
import {
  checkSignal,
  invalid,
  isPlainObject,
  LIMITS,
  nonNegativeNumber,
  numberInRange,
  oneOf,
  positiveInteger,
} from '../validate.js';
import { openRunner } from '../runners/registry.js';
import { entriesOf, type InputEntry, type Inputs } from './inputs.js';
import { resolveOptions } from '../runners/options.js';
import type { PipelineOptions, ResolvedOptions } from '../embedding/options.js';
import type { HeadMode } from '../model/model-info.js';
import type { Aggregate } from '../evaluation/aggregate.js';
import { AGGREGATES } from '../evaluation/aggregate.js';

export type { LabelScore, ScoredSegment };

/** Options of `loadClassifier()`. Frames, size and sampling default to the model's. */
export interface ClassifierOptions extends Omit<PipelineOptions, 'backbone'> {
  /**
   * Overrides the backbone recorded in the model (it must have the same id).
   * @default the model's backbone
   */
  backbone?: PipelineOptions['backbone'];
}

/** Options of one `classify()` run. */
export interface ClassifyOptions {
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /**
   * How clip probabilities become video probabilities: their mean, or the per-class max.
   * @default 'mean'
   */
  aggregate?: Aggregate;
  /**
   * Labels in `topk`.
   * @default 5
   */
  topK?: number;
  /** Entries (a path, and a manifest row's span) to leave out (resume). */
  skip?: (entry: InputEntry) => boolean;
  /**
   * A video (clip model) or a frame (frame model) whose top probability is below this gets the
   * label `unknown` (its `score` stays the top probability). In [0, 1].
   * @default 0 (always one of the model's labels)
   */
  threshold?: number;
  /**
   * Frame models: segments shorter than this many seconds are merged into their longer
   * neighbour. @default 0 (none merged)
   */
  minSegment?: number;
}

/** One clip's prediction. */
export interface ClipPrediction {
  index: number;
  start: number;
  end: number;
  label: string;
  score: number;
  /** Class probabilities, in `classifier.labels` order. */
  probs: Float32Array;
}

/** One frame's prediction (frame mode). */
export interface FramePrediction {
  t: number;
  label: string;
  score: number;
  probs: Float32Array;
}

/** The prediction for one video. */
export interface ClassifyResult {
  path: string;
  /** The span of the video, for a manifest row that names one. */
  start?: number;
  end?: number;
  /** The true label, when the input was a labelled dataset. */
  trueLabel?: string;
  /**
   * Clip model: the label of the highest video-level probability. Frame model: the label
   * covering the most time in `segments`. `unknown` below the `threshold`.
   */
  label: string;
  /** Clip model: the label's video-level probability. Frame model: the share of the time it covers. */
  score: number;
  /** Clip model: the k most probable labels. Frame model: the labels by the share of time they cover. */
  topk: LabelScore[];
  /** Video-level class probabilities (the clips aggregated; for a frame model, the mean over frames), in `classifier.labels` order. */
  probs: Float32Array;
  clips: ClipPrediction[];
  /** Frame mode only: one entry per real frame, in time order. */
  frames?: FramePrediction[];
  /** Frame mode only: runs of one frame label, in time order, covering the video (or span). */
  segments?: ScoredSegment[];
  /** What went wrong in decoding, when something did (frames repeated, ffmpeg's decode errors). */
  warnings?: string[];
  cached: boolean;
}

/** A loaded model with its runner. */
export interface Classifier {
  readonly labels: readonly string[];
  readonly mode: HeadMode;
  readonly model: ModelInfo;
  readonly backboneId: string;
  readonly frames: number;
  readonly size: number;
  readonly sampling: Sampling;
  /** The engine that runs the backbone (`onnx` or `tfjs`, `none` until it is needed), and why. */
  readonly engine: { name: string; reason: string };
  /** The tfjs backend that runs the backbone, and why: present only when the engine is `tfjs`. */
  readonly backend?: { name: string; reason: string };
  /** Classifies files, folders and manifests (or discovered entries): one result or error record per video. */
  classify(inputs: Inputs, options?: ClassifyOptions): AsyncGenerator<ClassifyResult | ErrorRecord>;
  /** Classifies discovered entries, each result with its entry (`evaluate` needs the true labels). */
  classifyEntries<I extends InputEntry>(
    entries: readonly I[],
    options?: ClassifyOptions,
  ): AsyncGenerator<[I, ClassifyResult | ErrorRecord]>;
  close(): Promise<void>;
}

/** Head outputs for one video → its prediction. */
export function predictionFrom(
  video: VideoFrames,
  output: Float32Array,
  labels: readonly string[],
  mode: HeadMode,
  options: { aggregate: Aggregate; topK: number; threshold?: number; minSegment?: number },
): Omit<ClassifyResult, 'path' | 'cached'> {
  const threshold = options.threshold ?? 0;
  const C = labels.length;
  const T = video.frames;
  const clipProbs: Float32Array[] = [];
  const frames: FramePrediction[] = [];
  video.clips.forEach((clip, i) => {
    if (mode === 'clip') {
      clipProbs.push(output.slice(i * C, (i + 1) * C)); // row i of [clips, C]
      return;
    }
    // Frame mode: output [clips, T, C]; the clip's probabilities are the mean over its real frames.
    const rows: Float32Array[] = [];
    for (let t = 0; t < T; t++) {
      if (!clip.mask[t]) continue;
      const probs = output.slice((i * T + t) * C, (i * T + t + 1) * C);
      rows.push(probs);
      const best = argmax(probs);
      frames.push({
        t: clip.timestamps[t],
        label: probs[best] < threshold ? UNKNOWN_LABEL : labels[best],
        score: probs[best],
        probs,
      });
    }
    clipProbs.push(aggregateScores(rows, 'mean', C));
  });
  const probs = aggregateScores(clipProbs, options.aggregate, C);
  const best = argmax(probs);
  const result: Omit<ClassifyResult, 'path' | 'cached'> = {
    label: probs[best] < threshold ? UNKNOWN_LABEL : labels[best],
    score: probs[best],
    topk: topK(probs, labels, options.topK),
    probs,
    clips: video.clips.map((clip, i) => {
      const b = argmax(clipProbs[i]);
      return {
        index: clip.index,
        start: clip.start,
        end: clip.end,
        label: labels[b],
        score: clipProbs[i][b],
        probs: clipProbs[i],
      };
    }),
  };
  if (mode === 'frame') {
    result.frames = frames.sort((a, b) => a.t - b.t);
    const start = Math.min(...video.clips.map((c) => c.start));
    const end = Math.max(...video.clips.map((c) => c.end));
    result.segments = segmentsFromFrames(result.frames, {
      labels,
      start,
      end,
      minSegment: options.minSegment,
    });
    const shares = timeShares(result.segments);
    const rest = labels
      .filter((l) => !shares.some((s) => s.label === l))
      .map((label) => ({ label, score: 0 }));
    if (shares.length > 0) [result.label, result.score] = [shares[0].label, shares[0].score];
    result.topk = [...shares, ...rest].slice(0, options.topK);
  }
  const warnings = video.clips.flatMap((clip) => clip.warnings ?? []);
  if (warnings.length > 0) result.warnings = [...new Set(warnings)];
  return result;
}

function validateClassifyOptions(options: unknown): {
  aggregate: Aggregate;
  topK: number;
  threshold: number;
  minSegment: number;
} {
  if (!isPlainObject(options)) throw invalid('options', 'an options object', options);
  return {
    aggregate: options.aggregate === undefined ? 'mean' : oneOf('aggregate', options.aggregate, AGGREGATES),
    topK: options.topK === undefined ? 5 : positiveInteger('topK', options.topK, LIMITS.topK),
    threshold: options.threshold === undefined ? 0 : numberInRange('threshold', options.threshold, 0, 1),
    minSegment: options.minSegment === undefined ? 0 : nonNegativeNumber('minSegment', options.minSegment),
  };
}

/**
 * The run options of a classifier: `options` over the model's own (its backbone, frames,
 * sampling, size and fit), resolved once. `loadClassifier()` takes the result as it is.
 */
export function resolveClassifierOptions(options: ClassifierOptions, info: ModelInfo): ResolvedOptions {
  return resolveOptions({
    ...options,
    signal: undefined,
    backbone: options.backbone ?? (info.backbone as PipelineOptions['backbone']),
    frames:
      options.frames ?? (options.sampling && typeof options.sampling === 'object' ? undefined : info.frames),
    sampling: options.sampling ?? (info.sampling as Sampling | undefined),
    size: options.size ?? info.size,
    fit: options.fit ?? (info.fit as Fit | undefined),
  });
}

/**
 * Loads a model folder (`model.json`, weights, `framewise.json`) and the backbone it was
 * trained on.
 *
 * ```ts
 * const clf = await loadClassifier('samples/model');
 * for await (const r of clf.classify(['videos/'])) console.log(r);
 * await clf.close();
 * ```
 */
export async function loadClassifier(modelDir: string, options: ClassifierOptions = {}): Promise<Classifier> {
  if (typeof modelDir !== 'string' || modelDir.length === 0)
    throw invalid('modelDir', 'a model folder path', modelDir);
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object', options);
  const signal = checkSignal('signal', options.signal);
  const { loadModel } = await import('../model/model-files.js');
  const head = await loadModel(modelDir, { backend: options.backend, signal });
  const info = head.info;
  let runner: EmbedRunner;
  let sampling: Sampling;
  try {
    const resolved = resolveClassifierOptions(options, info);
    sampling = resolved.sampling;
    runner = await openRunner(resolved, signal);
  } catch (error) {
    await head.dispose();
    throw error;
  }
  if (info.backboneId && runner.backboneId !== info.backboneId) {
    await runner.close();
    await head.dispose();
    throw new ModelError(
      `The model in ${modelDir} was trained on backbone ${info.backboneId}, but the backbone loaded is ${runner.backboneId}`,
    );
  }
  if (runner.dim !== info.dim && info.dim !== undefined) {
    await runner.close();
    await head.dispose();
    throw new ModelError(
      `The model in ${modelDir} expects embeddings of size ${info.dim}, but the backbone gives ${runner.dim}`,
    );
  }
  return makeClassifier(head, runner, sampling);
}

function makeClassifier(head: Head, runner: EmbedRunner, sampling: Sampling): Classifier {
  const labels = head.info.labels;
  const mode = head.info.mode;

  async function* classifyEntries<I extends InputEntry>(
    entries: readonly I[],
    options: ClassifyOptions = {},
  ): AsyncGenerator<[I, ClassifyResult | ErrorRecord]> {
    const settings = validateClassifyOptions(options);
    if (settings.threshold > 0 && labels.includes(UNKNOWN_LABEL)) {
      throw new UsageError(
        `\`threshold\` labels uncertain videos '${UNKNOWN_LABEL}', and this model has a label '${UNKNOWN_LABEL}' of its own`,
      );
    }
    const signal = checkSignal('signal', options.signal);
    for await (const [entry, outcome] of runner.run(entries, {
      signal,
      onProgress: options.onProgress,
      skip: options.skip,
    })) {
      if (isErrorRecord(outcome)) {
        yield [entry, withSpan(outcome, entry)];
        continue;
      }
      const B = outcome.clips.length;
      const mask = new Uint8Array(B * outcome.frames);
      outcome.clips.forEach((clip, i) =>
        clip.mask.forEach((m, t) => (mask[i * outcome.frames + t] = m ? 1 : 0)),
      );
      const output = await head.predict(outcome.embeddings, [B, outcome.frames, outcome.dim], mask);
      const prediction = predictionFrom(outcome, output, labels, mode, settings);
      yield [
        entry,
        {
          path: outcome.path,
          ...spanOf(entry),
          ...(entry.label !== undefined ? { trueLabel: entry.label } : {}),
          ...prediction,
          cached: outcome.cached,
        },
      ];
    }
  }

  return {
    labels,
    mode,
    model: head.info,
    backboneId: runner.backboneId,
    frames: sampling.frames,
    size: runner.size,
    sampling,
    get engine() {
      return runner.engine;
    },
    get backend() {
      return runner.backend;
    },
    classifyEntries,
    async *classify(inputs, options = {}) {
      validateClassifyOptions(options);
      const entries = await entriesOf(inputs, { signal: checkSignal('signal', options.signal) });
      for await (const [, result] of classifyEntries(entries, options)) yield result;
    },
    async close() {
      await runner.close();
      await head.dispose();
    },
  };
}
