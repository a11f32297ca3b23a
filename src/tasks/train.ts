/**
 * `train()`: embeds a labelled dataset (through the cache), trains a temporal head on the
 * frame embeddings with the backbone frozen, and writes the model folder.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import seedrandom from 'seedrandom';
import { UsageError } from '../errors.js';
import type { ProgressCallback } from '../embedding/progress.js';
import { isErrorRecord, type EmbedRunner, type ErrorRecord, type VideoFrames } from '../embedding/runner.js';
import type { EpochProgress, HeadOptions, HeadType, ModelInfo, TrainMetrics } from '../model/types.js';
import type { TrainCheckpoint, TrainHeadOptions } from '../model/train.js';
import type { LrSchedule, Monitor } from '../model/train-options.js';
import type { CheckpointContents } from '../model/checkpoint.js';
import { HEADS } from '../model/heads/registry.js';
import { samplingTakesSubsets } from '../ingest/sampling.js';
import {
  boolean as bool,
  checkSignal,
  conflict,
  invalid,
  isPlainObject,
  LIMITS,
  nonEmptyString,
  nonNegativeInteger,
  numberInRange,
  oneOf,
  positiveInteger,
} from '../validate.js';
import { checkOutputDir, csvText, OUTPUT_DIRS, writeFileAtomic } from '../fs.js';
import { openRunner } from '../runners/registry.js';
import { discoverInputs, labelAt, type InputEntry } from './inputs.js';
import { resolveOptions } from '../runners/options.js';
import type { PipelineOptions, ResolvedOptions } from '../embedding/options.js';
import type { HeadMode } from '../model/model-info.js';
import { HEAD_MODES } from '../model/model-info.js';

/** Options of `train()`. */
export interface TrainOptions extends PipelineOptions {
  /** The model folder to write, as a whole and atomically. */
  out: string;
  /**
   * Replace an existing `out`. Only a folder framewise wrote (with framewise.json) or an
   * empty one is ever replaced; anything else is a `UsageError`, checked before any work.
   * @default false
   */
  force?: boolean;
  /**
   * Go on from the checkpoint in `out` (a run that was interrupted), from its next epoch. The
   * dataset and every setting must be the same; a `UsageError` says what differs.
   * @default false
   */
  resume?: boolean;
  /**
   * The temporal head.
   * @default 'lstm'
   */
  head?: HeadType;
  /**
   * `clip`: one label per clip (many-to-one); `frame`: one label per frame (many-to-many, needs segments).
   * @default 'clip'
   */
  mode?: HeadMode;
  /**
   * Most epochs (early stopping on the validation loss keeps the best weights).
   * @default 100
   */
  epochs?: number;
  /**
   * Fixes the head's initial weights, the validation split and the shuffling.
   * @default 42
   */
  seed?: number;
  /**
   * Fraction of each class's videos held out for validation (a video never lands in both).
   * @default 0.2
   */
  valSplit?: number;
  /** More head settings (units, dropout) for the model's `resolveHeadConfig`. */
  headOptions?: Omit<HeadOptions, 'type' | 'mode'>;
  /** Adam's learning rate. @default 0.001 */
  learningRate?: number;
  /** Clips per training batch. @default 16 */
  batchSize?: number;
  /** Epochs without improvement before stopping. @default 10 */
  patience?: number;
  /** What early stopping watches. @default 'val_loss' */
  monitor?: Monitor;
  /** An improvement smaller than this does not count. @default 0.0001 */
  minDelta?: number;
  /** The learning-rate schedule. @default 'none' */
  lrSchedule?: LrSchedule;
  /** Heads trained with seeds seed..seed+N-1 on one split, kept in one model folder; every consumer averages them. @default 1 */
  ensemble?: number;
  /** Class weights. @default none */
  classWeight?: 'balanced' | Record<string, number>;
  /**
   * Clip mode with uniform sampling: extra training clips drawn per video. Each video is
   * embedded at 1.5 T frames once, and each extra clip is a sorted random subset of T of
   * them (other speeds and offsets, same order of time), besides the evenly spaced one.
   * 0 turns it off.
   * @default 8
   */
  augment?: number;
  /** Embedding progress. */
  onProgress?: ProgressCallback;
  /** Training progress, after every epoch (with `member` in an ensemble); the rows of history.csv. */
  onEpoch?: (progress: EpochProgress) => void;
  /** A warning (e.g. the head fell back to cpu). */
  onWarning?: (message: string) => void;
}

/** What `train()` returns. */
export interface TrainResult {
  /** Where the model was written. */
  dir: string;
  labels: string[];
  mode: HeadMode;
  head: string;
  /** Training clips per class (clip mode) or frames per class (frame mode). */
  counts: Record<string, number>;
  videos: number;
  /** Clips from the videos, and clips trained on (more when augmenting). */
  clips: number;
  trainingClips: number;
  metrics: TrainMetrics | null;
  /**
   * Every epoch, as `onEpoch` received them (an ensemble's members one after another, each
   * row with its `member`); after a resume, the epochs before it too (the members finished
   * before it without `seconds`).
   */
  history: EpochProgress[];
  /** The epoch it went on from with `resume` (0: from the start). */
  resumedAt: number;
  /** Videos that could not be used. */
  failures: ErrorRecord[];
  backboneId: string;
}

/**
 * The validation split keeps each group on one side. A group is a file name without its
 * folder and extension: videos with the same name in different class folders (`forward/a.mp4`,
 * `reversed/a.mp4`) are usually versions of one source, and splitting them would leak it.
 */
export function groupOf(path: string): string {
  return basename(path, extname(path));
}

/**
 * The index sets of a training pool: the evenly spaced T of P, then `extra` sorted random
 * subsets of T (seeded), so clips keep the order of time at other speeds and offsets.
 */
export function subsets(P: number, T: number, extra: number, seed: number): number[][] {
  const even = Array.from({ length: T }, (_, t) => Math.min(P - 1, Math.floor(((t + 0.5) * P) / T)));
  const rng = seedrandom(`framewise-augment/${seed}`);
  const out = [even];
  for (let k = 0; k < extra; k++) {
    const order = Array.from({ length: P }, (_, i) => i);
    for (let i = P - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    out.push(order.slice(0, T).sort((a, b) => a - b));
  }
  return out;
}

/** The dataset's videos; a UsageError unless every one has a label (or, in frame mode, segments). */
async function labelledInputs(
  dataset: string | string[],
  mode: HeadMode,
  signal: AbortSignal | undefined,
): Promise<InputEntry[]> {
  const entries = await discoverInputs(dataset, { signal });
  const unlabelled = entries.filter((e) =>
    mode === 'frame' ? !e.segments && e.label === undefined : e.label === undefined,
  );
  if (unlabelled.length > 0) {
    throw new UsageError(
      `${unlabelled.length} video(s) have no label (e.g. ${unlabelled[0].path}); give a folder-per-class tree or a manifest with labels${mode === 'frame' ? ' or segments' : ''}`,
    );
  }
  return entries;
}

/** Every video's embeddings, in order, and the error records of those that failed. */
async function embedAll(
  runner: EmbedRunner,
  entries: InputEntry[],
  options: { signal?: AbortSignal; onProgress?: ProgressCallback },
): Promise<{ videos: Array<{ entry: InputEntry; frames: VideoFrames }>; failures: ErrorRecord[] }> {
  const videos: Array<{ entry: InputEntry; frames: VideoFrames }> = [];
  const failures: ErrorRecord[] = [];
  for await (const [entry, outcome] of runner.run(entries, options)) {
    if (isErrorRecord(outcome)) failures.push(outcome);
    else videos.push({ entry, frames: outcome });
  }
  return { videos, failures };
}

/** The training clips, their labels and groups, and the count of each label. */
interface TrainingSet {
  /** [N, T, D] */
  embeddings: Float32Array;
  /** [N * T], 1 for a real frame. */
  masks: Uint8Array;
  /** N (clip mode) or N * T (frame mode). */
  labels: Array<string | null>;
  groups: string[];
  counts: Record<string, number>;
}

/**
 * The training clips: for each clip of each video, each pick of T of its P frames
 * ([P, D] -> [T, D]). Undefined when there is no clip at all.
 */
function trainingSet(
  videos: ReadonlyArray<{ entry: InputEntry; frames: VideoFrames }>,
  picks: number[][],
  { T, D, mode }: { T: number; D: number; mode: HeadMode },
): TrainingSet | undefined {
  const most = videos.reduce((n, v) => n + v.frames.clips.length, 0) * picks.length;
  if (most === 0) return undefined;
  const all = new Float32Array(most * T * D); // [N, T, D]
  const allMasks = new Uint8Array(most * T);
  const set: TrainingSet = { embeddings: all, masks: allMasks, labels: [], groups: [], counts: {} };
  let n = 0;
  for (const { entry, frames: video } of videos) {
    const P = video.frames;
    for (let c = 0; c < video.clips.length; c++) {
      for (const [k, pick] of picks.entries()) {
        const source = video.clips[c];
        // A subset of a padded short clip may hold only repeats: nothing to learn from.
        if (!pick.some((f) => source.mask[f])) continue;
        // Clip n: frames `pick` of the video's clip c ([P, D] → [T, D]).
        pick.forEach((f, t) => {
          all.set(video.embeddings.subarray((c * P + f) * D, (c * P + f + 1) * D), (n * T + t) * D);
          allMasks[n * T + t] = source.mask[f] ? 1 : 0;
        });
        const clip = {
          ...source,
          mask: pick.map((f) => source.mask[f]),
          timestamps: pick.map((f) => source.timestamps[f]),
        };
        addLabels(set, mode, entry, clip, k === 0);
        n += 1;
      }
    }
  }
  return { ...set, embeddings: all.subarray(0, n * T * D), masks: allMasks.subarray(0, n * T) };
}

/** Adds the labels of one training clip to `set`; `count` only for the first clip drawn from a source clip. */
function addLabels(
  set: TrainingSet,
  mode: HeadMode,
  entry: InputEntry,
  clip: { start: number; end: number; mask: boolean[]; timestamps: number[] },
  count: boolean,
): void {
  set.groups.push(groupOf(entry.path));
  if (mode === 'clip') {
    const label =
      entry.label ?? (entry.segments ? labelAt(entry.segments, (clip.start + clip.end) / 2) : null);
    set.labels.push(label);
    if (label && count) set.counts[label] = (set.counts[label] ?? 0) + 1;
    return;
  }
  clip.timestamps.forEach((ts, t) => {
    const label = entry.segments ? labelAt(entry.segments, ts) : (entry.label ?? null);
    set.labels.push(clip.mask[t] ? label : null);
    if (clip.mask[t] && label && count) set.counts[label] = (set.counts[label] ?? 0) + 1;
  });
}

/** `train()`'s options checked, defaults filled in, and the options of `trainHead` they make. */
function resolveTrainOptions(options: TrainOptions) {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'an options object with `out`', options);
  const out = nonEmptyString('out', options.out);
  const headType = options.head === undefined ? HEADS.default : HEADS.check('head', options.head);
  const mode = options.mode === undefined ? 'clip' : oneOf('mode', options.mode, HEAD_MODES);
  const seed = options.seed === undefined ? 42 : nonNegativeInteger('seed', options.seed, LIMITS.seed);
  const augment =
    options.augment === undefined ? 8 : nonNegativeInteger('augment', options.augment, LIMITS.augment);
  const force = options.force === undefined ? false : bool('force', options.force);
  const resume = options.resume === undefined ? false : bool('resume', options.resume);
  if (resume && force)
    throw conflict(
      'resume',
      'force',
      '--resume goes on from the checkpoint in the model folder, --force starts over',
    );
  const headOptions: TrainHeadOptions = {
    head: { ...(options.headOptions ?? {}), type: headType, mode },
    epochs:
      options.epochs === undefined ? undefined : positiveInteger('epochs', options.epochs, LIMITS.epochs),
    seed,
    valSplit:
      options.valSplit === undefined
        ? 0.2
        : numberInRange('valSplit', options.valSplit, 0, 1, { exclusiveMax: true }),
    learningRate: options.learningRate,
    batchSize: options.batchSize,
    patience: options.patience,
    monitor: options.monitor,
    minDelta: options.minDelta,
    lrSchedule: options.lrSchedule,
    ensemble: options.ensemble,
    classWeight: options.classWeight,
  };
  return { out, headType, mode, seed, augment, force, resume, headOptions, base: resolveOptions(options) };
}

/**
 * Trains a head on a dataset: a folder-per-class tree or a manifest (CSV `path,label`, or
 * JSONL with `label` or `segments` for frame mode).
 *
 * ```ts
 * const model = await train('data/train.csv', { head: 'lstm', out: 'model/', epochs: 50, seed: 1 });
 * console.log(model.metrics?.valAcc);
 * ```
 */
export async function train(dataset: string | string[], options: TrainOptions): Promise<TrainResult> {
  const signal = checkSignal('signal', (options as TrainOptions | undefined)?.signal);
  const { out, headType, mode, seed, augment, force, resume, headOptions, base } =
    resolveTrainOptions(options);
  const model = { ...(await import('../model/train.js')), ...(await import('../model/model-files.js')) };
  const { readCheckpoint, writeCheckpoint } = await import('../model/checkpoint.js');
  const augmenting = augment > 0 && mode === 'clip' && samplingTakesSubsets(base.sampling);
  const settings = runSettings(model.trainSettings(headOptions), augmenting ? augment : 0, base);
  if (!resume && !force && (await model.isTrainingFolder(out))) {
    throw new UsageError(
      `${out} holds an interrupted training run: pass --resume to go on from it, or --force to start over`,
    );
  }
  // Held until the model is written; released however the run ends.
  await using _lock = await checkOutputDir(out, OUTPUT_DIRS.model, { force: force || resume });
  const checkpoint = resume
    ? await resumable(out, settings, readCheckpoint, model.isTrainingFolder)
    : undefined;
  const T = base.frames;
  const pool = augmenting ? Math.ceil(T * 1.5) : T;

  const entries = await labelledInputs(dataset, mode, signal);
  // Augmenting: embed a pool of 1.5 T frames per video, then draw clips of T from it.
  const runner = await openRunner(
    augmenting ? { ...base, sampling: { ...base.sampling, frames: pool } } : base,
    signal,
  );
  const sampling = { ...base.sampling, frames: T };
  try {
    const { videos, failures } = await embedAll(runner, entries, {
      signal,
      onProgress: options.onProgress,
    });
    const D = runner.dim;
    const picks = augmenting ? subsets(pool, T, augment, seed) : [Array.from({ length: T }, (_, t) => t)];
    const set = trainingSet(videos, picks, { T, D, mode });
    if (!set)
      throw new UsageError(`No usable videos in ${[dataset].flat().join(', ')} (${failures.length} failed)`);
    const { embeddings, masks, labels, groups } = set;
    const N = groups.length;
    const data = { id: datasetId(set), videos: videos.length, clips: N };
    if (checkpoint) checkSameData(out, checkpoint.dataset, data);
    const { selectHeadBackend } = await import('../model/head-backend.js');
    await selectHeadBackend(base.backend, { signal });
    // From here on the model folder holds the run: after every epoch, its checkpoint and history.
    if (!checkpoint) await model.startTrainingFolder(out);
    const history = await HistoryFiles.open(out, Number(settings.ensemble), checkpoint?.state);
    const save = (state: TrainCheckpoint) =>
      writeCheckpoint(out, { schema: 'framewise.checkpoint/1', settings, dataset: data, state });
    const classifier = await model.trainHead(
      { embeddings, shape: [N, T, D], labels, masks, groups },
      {
        ...headOptions,
        backbone: runner.backbone,
        sampling,
        resume: checkpoint?.state,
        ...recording(history, save, options.onEpoch),
        onWarning: options.onWarning,
        signal,
      },
    );
    try {
      const info = await model.saveModel(out, classifier, {
        backbone: runner.backbone,
        frames: T,
        sampling,
        extra: { fit: base.fit },
        files: await trainingFiles(history, classifier.info, signal),
        signal,
      });
      return trainResult(out, info, { mode, headType, set, videos, failures, history });
    } finally {
      await classifier.dispose();
    }
  } finally {
    await runner.close();
  }
}

/** Every setting, defaults filled in: what a checkpoint is made with and a resume must match. */
function runSettings(
  headSettings: Record<string, unknown>,
  augment: number,
  base: ResolvedOptions,
): Record<string, unknown> {
  return {
    ...headSettings,
    augment,
    frames: base.frames,
    sampling: base.sampling,
    fit: base.fit,
    backbone: base.backbone,
  };
}

/** The callbacks that keep the run in its model folder: after every epoch its checkpoint, then its history; each row on to `onEpoch`. */
function recording(
  history: HistoryFiles,
  save: (state: TrainCheckpoint) => Promise<void>,
  onEpoch: TrainOptions['onEpoch'],
): Pick<TrainHeadOptions, 'onCheckpoint' | 'onEpoch'> {
  return {
    onCheckpoint: async (state: TrainCheckpoint) => {
      await save(state);
      await history.write(state);
    },
    onEpoch: (e) => {
      history.add(e);
      onEpoch?.(e);
    },
  };
}

/** What `train()` returns: the model written, what it was trained on and how training went. */
function trainResult(
  out: string,
  info: ModelInfo,
  {
    mode,
    headType,
    set,
    videos,
    failures,
    history,
  }: {
    mode: HeadMode;
    headType: HeadType;
    set: TrainingSet;
    videos: ReadonlyArray<{ frames: VideoFrames }>;
    failures: ErrorRecord[];
    history: HistoryFiles;
  },
): TrainResult {
  return {
    dir: out,
    labels: info.labels,
    mode,
    head: headType,
    counts: set.counts,
    videos: videos.length,
    clips: videos.reduce((k, v) => k + v.frames.clips.length, 0),
    trainingClips: set.groups.length,
    metrics: info.metrics,
    history: history.members.flat(),
    resumedAt: history.resumedAt,
    failures,
    backboneId: info.backboneId,
  };
}

/** The files a finished run adds to its model folder: the history of each member and the curves. */
async function trainingFiles(
  history: HistoryFiles,
  info: ModelInfo,
  signal: AbortSignal | undefined,
): Promise<Record<string, string | Uint8Array>> {
  const { curvesPng } = await import('../evaluation/report.js');
  const members = info.metrics?.members ?? (info.metrics ? [info.metrics] : []);
  // The curves from the metrics' history (the same for every run, resumed or not).
  const curves = await curvesPng(
    members.map((m) => m.history),
    { best: members.map((m) => m.bestEpoch), signal },
  );
  return { ...history.files(), 'curves.png': curves };
}

/** history.csv for one head, history-K.csv (1-based) for an ensemble's member K. */
export function historyFile(k: number, members: number): string {
  return members > 1 ? `history-${k + 1}.csv` : 'history.csv';
}

/** The columns of history.csv. */
export const HISTORY_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds'] as const;

function historyCsv(rows: readonly EpochProgress[]): string {
  return csvText([
    HISTORY_COLUMNS,
    ...rows.map((r) => [
      r.epoch,
      r.loss,
      r.acc,
      r.valLoss ?? '',
      r.valAcc ?? '',
      r.lr ?? '',
      r.seconds === undefined ? '' : Number(r.seconds.toFixed(3)),
    ]),
  ]);
}

/**
 * The history files of a run, written into the model folder as training goes (with each
 * checkpoint, atomically), so a crash keeps what was done.
 */
class HistoryFiles {
  /** Each member's rows so far (a member finished before a resume: none, see `texts`). */
  readonly members: EpochProgress[][];
  /** The files of members finished before a resume, as they were written. */
  private readonly texts: Array<string | undefined>;
  readonly resumedAt: number;

  private constructor(
    private readonly dir: string,
    private readonly size: number,
    resumed: TrainCheckpoint | undefined,
    texts: Array<string | undefined>,
  ) {
    this.members = Array.from({ length: size }, () => []);
    // Members finished before the resume: their figures (their files keep the wall times).
    resumed?.done.forEach(
      (d, k) =>
        (this.members[k] = d.metrics.history.map((r) => ({ ...r, ...(size > 1 ? { member: k + 1 } : {}) }))),
    );
    if (resumed?.current) this.members[resumed.member] = resumed.current.rows.map((r) => ({ ...r }));
    this.resumedAt = resumed?.current?.epoch ?? 0;
    this.texts = texts;
  }

  static async open(dir: string, size: number, resumed: TrainCheckpoint | undefined): Promise<HistoryFiles> {
    const texts: Array<string | undefined> = [];
    for (let k = 0; k < (resumed?.member ?? 0); k++)
      texts[k] = await readFile(join(dir, historyFile(k, size)), 'utf8').catch(() => undefined);
    return new HistoryFiles(dir, size, resumed, texts);
  }

  add(e: EpochProgress): void {
    const { epochs: _, etaSeconds: __, ...row } = e;
    this.members[(e.member ?? 1) - 1].push(row);
  }

  /** After an epoch: the member in training's file. */
  async write(state: TrainCheckpoint): Promise<void> {
    if (state.current)
      await writeFileAtomic(
        join(this.dir, historyFile(state.member, this.size)),
        historyCsv(this.members[state.member]),
      );
  }

  /** Every member's file, by name. */
  files(): Record<string, string> {
    return Object.fromEntries(
      this.members.map((rows, k) => [historyFile(k, this.size), this.texts[k] ?? historyCsv(rows)]),
    );
  }
}

/** A content id for the training data: the embeddings, labels and groups trained on. */
function datasetId(set: TrainingSet): string {
  const hash = createHash('sha256');
  hash.update(new Uint8Array(set.embeddings.buffer, set.embeddings.byteOffset, set.embeddings.byteLength));
  hash.update(set.masks);
  hash.update(JSON.stringify([set.labels, set.groups]));
  return `sha256:${hash.digest('hex').slice(0, 32)}`;
}

/** A UsageError unless the data now is the data the checkpoint was made on. */
function checkSameData(
  out: string,
  was: CheckpointContents['dataset'],
  now: CheckpointContents['dataset'],
): void {
  if (was.id === now.id) return;
  const same = was.videos === now.videos && was.clips === now.clips;
  throw new UsageError(
    `Cannot resume ${out}: the dataset differs from the checkpoint's (then ${was.videos} videos, ${was.clips} training clips; ` +
      `now ${now.videos} videos, ${now.clips} training clips${same ? ', with other embeddings or labels' : ''}); train again with --force`,
  );
}

/** The checkpoint in `out` when it may be resumed with `settings`; else a UsageError saying why not (what differs). */
async function resumable(
  out: string,
  settings: Record<string, unknown>,
  read: (dir: string) => Promise<CheckpointContents | undefined>,
  inTraining: (dir: string) => Promise<boolean>,
): Promise<CheckpointContents> {
  if (!(await inTraining(out))) {
    throw new UsageError(
      `Nothing to resume in ${out}: it is not a model folder in training (a finished model, or none); train without --resume (and --force to replace it)`,
    );
  }
  const checkpoint = await read(out);
  if (!checkpoint)
    throw new UsageError(
      `Nothing to resume in ${out}: it was interrupted before its first epoch ended; train again with --force`,
    );
  const differ = settingsDiff(checkpoint.settings, settings);
  if (differ.length > 0) {
    throw new UsageError(
      `Cannot resume ${out}: ${differ.length === 1 ? 'a setting differs' : 'settings differ'} from its checkpoint's: ${differ.join('; ')}. Resume with the same settings, or start over with --force`,
    );
  }
  return checkpoint;
}

/** `name: now X, checkpoint Y` for every top-level setting that differs. */
export function settingsDiff(then: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(then), ...Object.keys(now)])].sort();
  const show = (v: unknown): string => (v === undefined ? 'unset' : JSON.stringify(v));
  return keys
    .filter((k) => JSON.stringify(then[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} ${show(now[k])} (checkpoint: ${show(then[k])})`);
}
