/**
 * `evaluate()`: runs a trained model over a labelled dataset (through the classifier and its
 * embedding cache), computes the metrics and, with `out`, writes the report folder.
 *
 * - Clip mode: metrics at the video level (clips aggregated by `aggregate`) and at the clip
 *   level (each clip carries its video's label).
 * - Frame mode: each sampled frame's true label is the label of the dataset segment that
 *   contains its timestamp (`[start, end)`; a timestamp outside every segment takes the
 *   nearest one). A dataset entry with a single label and no segments labels every frame.
 * - A model given the other mode's dataset (a frame model and a dataset without segments, a
 *   clip model and entries with segments but no label) is a `UsageError` saying so.
 * - Videos that fail to decode are listed in `failures`, counted, and excluded from the
 *   metrics; they never end the run.
 * - A dataset label the model does not know is a `UsageError` naming it (exit 2 in the CLI),
 *   raised before any video is decoded, unless `ignoreUnknownLabels`, which leaves those
 *   videos out and lists them in `ignored`.
 * - Everything in `metrics.json` is a function of the model, the dataset and the options,
 *   except the `timing` section: two runs give identical files apart from `timing`.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import type { ProgressCallback, ProgressEvent } from '../embedding/progress.js';
import { isErrorRecord, type ErrorRecord } from '../embedding/runner.js';
import { argmax } from '../evaluation/aggregate.js';
import {
  clipMetrics,
  coverageAt,
  frameMetrics,
  type FrameSequence,
  type ScoredDecision,
  type ScoredSample,
} from '../evaluation/metrics.js';
import {
  METRICS_SCHEMA,
  datasetFingerprint,
  writeReport,
  type MetricsReport,
  type PredictionRecord,
  type WrittenReport,
} from '../evaluation/report.js';
import { commonRoot } from '../evaluation/split.js';
import { debug } from '../log.js';
import {
  boolean as bool,
  checkSignal,
  invalid,
  isPlainObject,
  LIMITS,
  nonEmptyString,
  numberInRange,
  oneOf,
  positiveInteger,
} from '../validate.js';
import { checkOutputDir, OUTPUT_DIRS } from '../fs.js';
import { FRAMEWISE_VERSION } from '../version.js';
import type { Classifier, ClassifierOptions, ClassifyOptions, ClassifyResult } from './classify.js';
import { discoverInputs, labelAt, type InputEntry } from './inputs.js';
import type { HeadMode } from '../model/model-info.js';
import type { Aggregate } from '../evaluation/aggregate.js';
import { AGGREGATES } from '../evaluation/aggregate.js';

const require = createRequire(import.meta.url);

/** Options of `evaluate()`. Frames, size and sampling default to the model's. */
export interface EvalOptions extends ClassifierOptions {
  /** Report folder for metrics.json, predictions.jsonl, report.md, confusion.png, pr.png and reliability.png, written whole. @default no files */
  out?: string;
  /** Replace an existing `out` (only a report folder framewise wrote, or an empty one). @default false */
  force?: boolean;
  /** k of top-k accuracy, and the number of labels in each record's `topk`. @default 5 */
  topK?: number;
  /** How clip scores become a video score: `mean`, or the per-class `max`. @default 'mean' */
  aggregate?: Aggregate;
  /** Leave out (and list) videos whose label the model does not know, instead of failing. @default false */
  ignoreUnknownLabels?: boolean;
  /**
   * As `classify`'s: a video (clip model) or frame (frame model) whose top score is below it is
   * `unknown`, which counts as wrong; `metrics.coverage` says how much was answered. In [0, 1].
   * @default none
   */
  threshold?: number;
  /** Thresholds to report accuracy against coverage at (`metrics.thresholds`), each in [0, 1]. @default none */
  thresholds?: readonly number[];
  /** Progress events (videos, clips, frames/s, ETA, cache hits). */
  onProgress?: ProgressCallback;
}

export interface EvalResult {
  report: MetricsReport;
  /** One per evaluated or failed video, in dataset order. */
  predictions: PredictionRecord[];
  /** Set when `out` was given. */
  files?: WrittenReport;
}

const round = (x: number): number => Number.parseFloat(x.toPrecision(6));

function tfjsVersion(): string | null {
  try {
    return (require('@tensorflow/tfjs/package.json') as { version: string }).version;
  } catch {
    return null;
  }
}

/**
 * A content id for a model folder: sha256 of its labels, `model.json` and weight files. Two
 * trainings that give the same weights give the same id, whatever their timestamps.
 */
export async function modelId(modelDir: string, labels: readonly string[]): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(labels));
  const names = await readdir(modelDir);
  // An ensemble's members (member-2/, ...) count too; a checkpoint is not part of a finished model.
  const members = names.filter((n) => /^member-\d+$/.test(n)).sort();
  const files = names
    .filter((f) => f === 'model.json' || (f.endsWith('.bin') && f !== 'checkpoint.bin'))
    .sort();
  for (const m of members) for (const f of (await readdir(join(modelDir, m))).sort()) files.push(join(m, f));
  for (const f of files) hash.update(`\0${f}\0`).update(await readFile(join(modelDir, f)));
  return `sha256:${hash.digest('hex').slice(0, 16)}`;
}

interface Resolved {
  out: string | undefined;
  force: boolean;
  topK: number;
  aggregate: Aggregate;
  ignoreUnknownLabels: boolean;
  threshold: number | undefined;
  thresholds: number[] | undefined;
}

function resolveEvalOptions(options: unknown): Resolved {
  if (!isPlainObject(options)) throw invalid('options', 'an options object', options);
  return {
    out: options.out === undefined ? undefined : nonEmptyString('out', options.out),
    force: bool('force', options.force ?? false),
    topK: positiveInteger('topK', options.topK ?? 5, LIMITS.topK),
    aggregate: oneOf('aggregate', options.aggregate ?? 'mean', AGGREGATES),
    ignoreUnknownLabels: bool('ignoreUnknownLabels', options.ignoreUnknownLabels ?? false),
    threshold:
      options.threshold === undefined ? undefined : numberInRange('threshold', options.threshold, 0, 1),
    thresholds: options.thresholds === undefined ? undefined : thresholdList(options.thresholds),
  };
}

function thresholdList(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0)
    throw invalid('thresholds', 'a non-empty array of numbers in [0, 1]', value);
  return value.map((p, i) => numberInRange(`thresholds[${i}]`, p, 0, 1));
}

/** Where dataset paths are made relative to for the fingerprint: the dataset folder, or the manifest's. */
async function datasetRoot(inputs: readonly string[]): Promise<string> {
  const roots: string[] = [];
  for (const input of inputs) {
    const s = await stat(input).catch(() => null);
    roots.push(s?.isDirectory() ? resolve(input) : dirname(resolve(input)));
  }
  return roots.length === 1 ? roots[0] : commonRoot(roots.map((r) => join(r, 'x')));
}

/** The labels an entry claims, or a UsageError when it has none. */
function entryLabels(entry: InputEntry, mode: HeadMode): string[] {
  if (mode === 'frame' && entry.segments && entry.segments.length > 0)
    return [...new Set(entry.segments.map((s) => s.label))];
  if (entry.label !== undefined) return [entry.label];
  if (entry.segments && entry.segments.length > 0) throw modeMismatch('clip');
  throw new UsageError(
    `${entry.path} has neither a label nor segments: evaluate a folder-per-class tree, a manifest with labels, or a JSONL manifest with "segments"`,
  );
}

/** A UsageError when the dataset is labelled for the other mode (see `modeMismatch`). */
function checkMode(entries: readonly InputEntry[], mode: HeadMode): void {
  const framed = (e: InputEntry): boolean => e.segments !== undefined && e.segments.length > 0;
  if (mode === 'frame' && !entries.some(framed)) throw modeMismatch('frame');
  if (mode === 'clip' && entries.some((e) => framed(e) && e.label === undefined)) throw modeMismatch('clip');
}

/**
 * The UsageError for a model given the other mode's dataset: a frame model and clip labels
 * only, or a clip model and frame labels (segments) without a clip label.
 */
export function modeMismatch(mode: HeadMode): UsageError {
  return new UsageError(
    mode === 'frame'
      ? 'This is a frame model (one label per frame) and the dataset has clip labels (one per video): evaluate it on a JSONL manifest with "segments", or use a clip model'
      : 'This is a clip model (one label per clip) and the dataset has frame labels ("segments"): evaluate it on a dataset with a label per video, or use a frame model',
  );
}

/**
 * Evaluates the model in `modelDir` on a labelled dataset (a folder-per-class tree, a CSV
 * manifest `path,label`, or a JSONL manifest with segments for frame mode).
 *
 * ```ts
 * const { report } = await evaluate('data/test.csv', 'models/lstm', { out: 'reports/lstm' });
 * console.log(report.metrics.video?.top1);
 * ```
 */
export async function evaluate(
  dataset: string | string[],
  modelDir: string,
  options: EvalOptions = {},
): Promise<EvalResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const o = resolveEvalOptions(options);
  const signal = checkSignal('signal', options.signal);
  nonEmptyString('modelDir', modelDir);
  const inputs = typeof dataset === 'string' ? [dataset] : dataset;

  // Held until the report is written; released however the run ends.
  await using _lock = o.out ? await checkOutputDir(o.out, OUTPUT_DIRS.report, { force: o.force }) : undefined;
  const entries = await discoverInputs(inputs, { signal });
  const { onProgress } = options;
  const classifier = await loadForDataset(modelDir, entries, options);
  const { headBackend } = await import('../model/head-backend.js');
  const tLoaded = performance.now();
  try {
    const { mode } = classifier;
    const labels = [...classifier.labels];
    // Unknown labels are checked before any decode.
    const { kept, ignored } = knownEntries(entries, mode, labels, o.ignoreUnknownLabels);
    const datasetSection = await describeDataset(inputs, entries, mode);

    const tally = new EvalTally(mode, labels);
    const last = await classifyInto(tally, classifier, kept, {
      signal,
      topK: o.topK,
      aggregate: o.aggregate,
      threshold: o.threshold,
      onProgress,
    });
    const tClassified = performance.now();
    const metrics = tally.metrics(o.topK);
    if (o.threshold !== undefined) metrics.coverage = coverageAt(tally.decisions, o.threshold);
    if (o.thresholds) metrics.thresholds = o.thresholds.map((p) => coverageAt(tally.decisions, p));

    const report: MetricsReport = {
      schema: METRICS_SCHEMA,
      mode,
      model: await modelSection(modelDir, labels, classifier),
      dataset: datasetSection,
      counts: {
        videos: entries.length,
        evaluated: tally.evaluated,
        failed: tally.failures.length,
        ignored: ignored.length,
        clips: tally.clips,
        frames: tally.frames,
      },
      failures: tally.failures,
      ignored,
      metrics,
      settings: settingsSection(classifier, o),
      // The head's backend: chosen the same way on every run. The backbone's (`none` when
      // every embedding came from the cache) is run-dependent and goes to `timing`.
      versions: { framewise: FRAMEWISE_VERSION, tfjs: tfjsVersion(), backend: headBackend() ?? null },
      timing: timingSection({ startedAt, t0, tLoaded, tClassified }, tally, last, classifier),
    };
    // Wall time up to the report: writing the files (the PNG) is not part of the evaluation.
    report.timing.wallMs = Math.round(performance.now() - t0);
    const files = o.out
      ? await writeReport(o.out, report, tally.predictions, { signal, samples: tally.samples })
      : undefined;
    return { report, predictions: tally.predictions, ...(files ? { files } : {}) };
  } finally {
    await classifier.close();
  }
}

/** The report's timing from the run's clock marks, the tally and the last progress event; `wallMs` is set once the report is complete. */
function timingSection(
  clock: { startedAt: Date; t0: number; tLoaded: number; tClassified: number },
  tally: EvalTally,
  last: ProgressEvent | undefined,
  classifier: Classifier,
): MetricsReport['timing'] {
  const { startedAt, t0, tLoaded, tClassified } = clock;
  return {
    startedAt: startedAt.toISOString(),
    wallMs: 0,
    loadMs: Math.round(tLoaded - t0),
    classifyMs: Math.round(tClassified - tLoaded),
    cachedVideos: tally.cachedVideos,
    videosDecoded: last?.videosDecoded ?? 0,
    framesEmbedded: last?.framesEmbedded ?? 0,
    // The engine (`none` when every embedding came from the cache), and the tfjs backend when tfjs ran.
    backboneEngine: classifier.engine.name,
    ...(classifier.backend ? { backboneBackend: classifier.backend.name } : {}),
  };
}

/** The model's classifier, loaded once its mode is checked against the dataset's labels (before the backbone loads). */
async function loadForDataset(
  modelDir: string,
  entries: readonly InputEntry[],
  options: EvalOptions,
): Promise<Classifier> {
  const { loadClassifier } = await import('./classify.js');
  const { readModelInfo } = await import('../model/model-files.js');
  checkMode(entries, (await readModelInfo(modelDir)).mode);
  // The evaluation's own options are not the classifier's.
  const {
    out: _out,
    force: _f,
    topK: _k,
    aggregate: _a,
    ignoreUnknownLabels: _i,
    threshold: _t,
    thresholds: _ts,
    onProgress: _p,
    ...loadOptions
  } = options;
  return loadClassifier(modelDir, loadOptions);
}

/**
 * Classifies `entries` into `tally`. Returns the final progress event, which says how much
 * was decoded and embedded (0 on a fully cached run).
 */
async function classifyInto(
  tally: EvalTally,
  classifier: Classifier,
  entries: readonly InputEntry[],
  options: ClassifyOptions,
): Promise<ProgressEvent | undefined> {
  let last: ProgressEvent | undefined;
  const onProgress = (event: ProgressEvent): void => {
    last = event;
    options.onProgress?.(event);
  };
  for await (const [entry, r] of classifier.classifyEntries(entries, { ...options, onProgress }))
    tally.add(entry, r);
  return last;
}

/**
 * The entries whose labels the model knows, and the others, listed as ignored. A label the
 * model does not know is a UsageError naming it unless `ignoreUnknownLabels`.
 */
function knownEntries(
  entries: readonly InputEntry[],
  mode: HeadMode,
  labels: readonly string[],
  ignoreUnknownLabels: boolean,
): { kept: InputEntry[]; ignored: MetricsReport['ignored'] } {
  const known = new Set(labels);
  const ignored: MetricsReport['ignored'] = [];
  const unknown = new Set<string>();
  const kept: InputEntry[] = [];
  for (const entry of entries) {
    const missing = entryLabels(entry, mode).filter((l) => !known.has(l));
    if (missing.length === 0) kept.push(entry);
    else {
      missing.forEach((l) => unknown.add(l));
      ignored.push({ path: entry.path, label: missing.join(',') });
    }
  }
  if (unknown.size > 0 && !ignoreUnknownLabels) {
    const names = [...unknown].sort();
    throw new UsageError(
      `The dataset has label${names.length > 1 ? 's' : ''} ${names.map((l) => `'${l}'`).join(', ')} that the model does not know ` +
        `(its labels: ${labels.map((l) => `'${l}'`).join(', ')}); pass \`ignoreUnknownLabels: true\` to leave those videos out`,
    );
  }
  if (kept.length === 0) throw new UsageError('No video of the dataset has a label that the model knows');
  return { kept, ignored };
}

/** The report's `dataset`: its fingerprint and class counts are over every discovered video (ignored ones too: they are part of the dataset). */
async function describeDataset(
  inputs: readonly string[],
  entries: readonly InputEntry[],
  mode: HeadMode,
): Promise<MetricsReport['dataset']> {
  const root = await datasetRoot(inputs);
  const sized: Array<{ path: string; size: number; label: string }> = [];
  const classCounts: Record<string, number> = {};
  for (const e of entries) {
    const size = (await stat(e.path).catch(() => null))?.size ?? -1;
    const label =
      e.label ?? (e.segments ? e.segments.map((s) => `${s.start}-${s.end}:${s.label}`).join(';') : '');
    sized.push({ path: e.path, size, label });
    for (const l of entryLabels(e, mode)) classCounts[l] = (classCounts[l] ?? 0) + 1;
  }
  return {
    source: inputs.map((i) => resolve(i)).join(', '),
    fingerprint: datasetFingerprint(sized, root),
    videos: entries.length,
    classCounts: Object.fromEntries(
      Object.entries(classCounts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ),
  };
}

async function modelSection(
  modelDir: string,
  labels: string[],
  classifier: Classifier,
): Promise<MetricsReport['model']> {
  const info = classifier.model;
  return {
    id: await modelId(modelDir, labels),
    dir: resolve(modelDir),
    labels,
    head: info.head.type,
    backboneId: classifier.backboneId ?? null,
    trainSeed: info.metrics?.seed ?? null,
    framewiseVersion: info.version,
    ...(await trainingSection(modelDir, info)),
  };
}

/** The model folder's training record, when it has one: its history and curves files, and the validation accuracy of the head or of each member and the ensemble. */
async function trainingSection(
  modelDir: string,
  info: Classifier['model'],
): Promise<Pick<MetricsReport['model'], 'training'>> {
  const names = await readdir(modelDir).catch(() => [] as string[]);
  const files = names
    .filter((n) => /^(history(-\d+)?\.csv|curves\.png)$/.test(n))
    .sort()
    .map((n) => resolve(modelDir, n));
  const m = info.metrics;
  if (files.length === 0 && !m) return {};
  return {
    training: {
      files,
      valAcc: m?.valAcc ?? null,
      members: m?.members
        ? m.members.map((x) => ({ seed: x.seed, valAcc: x.valAcc, bestEpoch: x.bestEpoch, epochs: x.epochs }))
        : null,
    },
  };
}

function settingsSection(classifier: Classifier, o: Resolved): MetricsReport['settings'] {
  const { sampling } = classifier;
  return {
    topK: o.topK,
    aggregate: o.aggregate,
    frames: classifier.frames,
    size: classifier.size,
    sampling,
    seed: 'seed' in sampling && typeof sampling.seed === 'number' ? sampling.seed : null,
    ...(o.threshold !== undefined ? { threshold: o.threshold } : {}),
  };
}

/**
 * What the classified videos add up to: the samples the metrics are computed on, one
 * prediction record per video (failed ones too), the failures and the counts.
 */
class EvalTally {
  readonly predictions: PredictionRecord[] = [];
  readonly failures: MetricsReport['failures'] = [];
  /** Each video's (clip mode) or frame's (frame mode) top score and whether its top label is right: coverage at a threshold. */
  readonly decisions: ScoredDecision[] = [];
  clips = 0;
  frames = 0;
  cachedVideos = 0;
  private readonly videoSamples: ScoredSample[] = [];
  private readonly clipSamples: ScoredSample[] = [];
  private readonly sequences: FrameSequence[] = [];
  private readonly frameSamples: ScoredSample[] = [];

  constructor(
    private readonly mode: HeadMode,
    private readonly labels: string[],
  ) {}

  add(entry: InputEntry, r: ClassifyResult | ErrorRecord): void {
    const trueLabel = this.mode === 'clip' ? entry.label! : (entry.label ?? entry.segments?.[0]?.label ?? '');
    if (isErrorRecord(r)) {
      this.failures.push({ path: r.path, label: trueLabel, code: r.error.code, message: r.error.message });
      this.predictions.push({ path: r.path, trueLabel, error: r.error });
      debug('eval: %s failed: %s %s', r.path, r.error.code, r.error.message);
      return;
    }
    if (r.cached) this.cachedVideos++;
    this.clips += r.clips.length;
    if (this.mode === 'clip') this.addClips(r, trueLabel);
    else this.addFrames(entry, r, trueLabel);
  }

  /** The samples behind the confusion matrix, for the report's curves: videos (clip mode) or frames (frame mode). */
  get samples(): readonly ScoredSample[] {
    return this.mode === 'clip' ? this.videoSamples : this.frameSamples;
  }

  /** Videos with a result. */
  get evaluated(): number {
    return this.mode === 'clip' ? this.videoSamples.length : this.sequences.length;
  }

  /** The metrics of the mode; a UsageError when no video could be evaluated. */
  metrics(topK: number): MetricsReport['metrics'] {
    const { failures, labels } = this;
    if (this.evaluated === 0) {
      throw new UsageError(
        `No video of the dataset could be evaluated: all ${failures.length} failed (${[...new Set(failures.map((f) => f.code))].join(', ')})`,
      );
    }
    return this.mode === 'clip'
      ? {
          video: clipMetrics(this.videoSamples, { labels, topK }),
          clip: clipMetrics(this.clipSamples, { labels, topK }),
        }
      : { frame: frameMetrics(this.sequences, { labels }) };
  }

  /** Clip mode: the video is scored by its aggregated probabilities, each clip by its own. */
  private addClips(r: ClassifyResult, trueLabel: string): void {
    const truth = this.labels.indexOf(trueLabel);
    this.videoSamples.push({ truth, probs: r.probs });
    for (const c of r.clips) this.clipSamples.push({ truth, probs: c.probs });
    const best = argmax(r.probs);
    this.decisions.push({ score: r.probs[best], correct: best === truth });
    this.predictions.push({
      path: r.path,
      trueLabel,
      // `unknown` below a threshold, and then wrong.
      label: r.label,
      score: round(r.probs[best]),
      correct: r.label === trueLabel,
      topk: r.topk.map((t) => ({ label: t.label, score: round(t.score) })),
      clips: r.clips.map((c) => ({
        start: c.start,
        end: c.end,
        label: c.label,
        score: round(c.score),
        trueLabel,
      })),
    });
  }

  /** Frame mode: each frame's truth is the segment its timestamp falls in (the whole video without segments). */
  private addFrames(entry: InputEntry, r: ClassifyResult, trueLabel: string): void {
    const { labels } = this;
    const segments =
      entry.segments && entry.segments.length > 0
        ? entry.segments
        : [{ start: 0, end: Infinity, label: trueLabel }];
    const fr = r.frames ?? [];
    this.frames += fr.length;
    const truthLabels = fr.map((f) => labelAt(segments, f.t)!);
    // The metrics read each frame's top label: `unknown` (below a threshold) is counted in `coverage`.
    const pred = fr.map((f) => argmax(f.probs));
    const truth = truthLabels.map((l) => labels.indexOf(l));
    this.sequences.push({ truth, pred });
    pred.forEach((p, i) => this.decisions.push({ score: fr[i].score, correct: p === truth[i] }));
    fr.forEach((f, i) => this.frameSamples.push({ truth: truth[i], probs: f.probs }));
    this.predictions.push({
      path: r.path,
      trueLabel,
      label: r.label,
      score: round(r.score),
      topk: r.topk.map((t) => ({ label: t.label, score: round(t.score) })),
      clips: r.clips.map((c) => ({ start: c.start, end: c.end, label: c.label, score: round(c.score) })),
      frames: fr.map((f, i) => ({
        t: f.t,
        label: f.label,
        score: round(f.score),
        trueLabel: truthLabels[i],
      })),
    });
  }
}
