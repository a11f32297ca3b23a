/**
 * Trains a temporal head on frame embeddings; the backbone stays frozen (and the wasm backend
 * has no conv-gradient kernels anyway). Adam, a stratified validation split by group (a video
 * never lands in both splits), early stopping on a monitored figure with a minimum delta
 * keeping the best weights, a learning-rate schedule, optional class weights, ensembles of
 * heads with consecutive seeds, and a seed that makes a run repeatable on the same backend.
 * After every epoch the whole state (weights, Adam's state, the RNG, early stopping and the
 * schedule) can be handed to `onCheckpoint`; `resume` takes it back and ends where an
 * uninterrupted run would, bit for bit.
 */
import { tf } from '../tfjs/tf.js';
import seedrandom from 'seedrandom';
import { UsageError } from '../errors.js';
import { debug } from '../log.js';
import {
  checkSignal,
  invalid,
  isPlainObject,
  LIMITS,
  nonNegativeInteger,
  nonNegativeNumber,
  numberInRange,
  oneOf,
  positiveInteger,
  positiveNumber,
} from '../validate.js';
import { activeBackendName, currentBackend, withHeadBackend } from '../tfjs/backend.js';
import type { BackboneInfo } from '../embedding/backbone-spec.js';
import { averagedPredict, checkEmbeddings, TfHeadClassifier } from './classifier.js';
import type { EpochProgress, HeadClassifier, HeadOptions, ModelInfo, TrainMetrics } from './types.js';
import { Arc4Random } from './arc4.js';
import { fastStep, type FastStep } from './fast-step.js';
import { buildHead, resolveHeadConfig } from './heads.js';
import { FRAMEWISE_VERSION } from '../version.js';
import {
  DEFAULT_LR_SCHEDULE,
  DEFAULT_MIN_DELTA,
  LR_SCHEDULES,
  MONITORS,
  stopMessage,
  type LrSchedule,
  type Monitor,
  type StopInfo,
} from './train-options.js';

export {
  DEFAULT_LR_SCHEDULE,
  DEFAULT_MIN_DELTA,
  LR_SCHEDULES,
  MONITORS,
  stopMessage,
  type LrSchedule,
  type Monitor,
  type StopInfo,
};

/** Training data: embeddings of N clips of T frames, and their labels. */
export interface TrainData {
  /** Float32 [N, T, D], row-major. */
  embeddings: Float32Array;
  shape: [number, number, number];
  /**
   * Clip mode: N labels. Frame mode: N*T labels, one per frame (a padded frame's label is
   * ignored and may be null).
   */
  labels: ReadonlyArray<string | null>;
  /** Shape `[N*T]`: true/1 for a real frame, false/0 for padding. @default all real */
  masks?: ArrayLike<boolean | number>;
  /** Shape `[N]`: the video (or other group) each clip comes from; a group never spans both splits. @default each clip its own group */
  groups?: readonly string[];
}

export interface TrainHeadOptions {
  head?: HeadOptions;
  /** The class order. @default the sorted distinct labels */
  labels?: string[];
  /** @default 100 */
  epochs?: number;
  /** @default 16 */
  batchSize?: number;
  /** Adam's learning rate. @default 0.001 */
  learningRate?: number;
  /** Fraction of groups held out per class for validation (0 turns it off), as `train`'s `valSplit`. @default 0.2 */
  valSplit?: number;
  /** @deprecated The old name of `valSplit`. */
  validationSplit?: number;
  /** Epochs without an improvement of the monitored figure before stopping. @default 10 */
  patience?: number;
  /** The figure early stopping watches (the training figure when there is no validation split). @default 'val_loss' */
  monitor?: Monitor;
  /** An improvement smaller than this (absolute) does not count. @default 0.0001 */
  minDelta?: number;
  /** `none`, `plateau` (halve after patience/2 epochs without improvement) or `cosine` (over `epochs`). @default 'none' */
  lrSchedule?: LrSchedule;
  /** Heads to train (seeds seed..seed+N-1, one split); the classifier averages their probabilities. @default 1 */
  ensemble?: number;
  /** Called after every whole epoch (and between ensemble members) with the state to go on from. */
  onCheckpoint?: (checkpoint: TrainCheckpoint) => Promise<void> | void;
  /** A checkpoint to go on from (same data and settings), as `onCheckpoint` received it. */
  resume?: TrainCheckpoint;
  /** `'balanced'` (n / (C * n_c)) or a weight per label. @default none */
  classWeight?: 'balanced' | Record<string, number>;
  /** Fixes the initial weights, the split, the shuffling and the dropout. @default 42 */
  seed?: number;
  /** Recorded in the classifier's info (and so in framewise.json). */
  backbone?: BackboneInfo;
  /** Sampling recorded in the classifier's info. */
  sampling?: unknown;
  onEpoch?: (progress: EpochProgress) => void;
  /** Called when the head has to fall back to cpu (a kernel missing on the current backend). */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

interface Prepared {
  n: number;
  t: number;
  d: number;
  classes: string[];
  /** Clip mode: [N]; frame mode: [N*T]; -1 where masked. */
  targets: Int32Array;
  masks: Uint8Array;
  groups: string[];
}

function validate(data: TrainData, options: TrainHeadOptions, frame: boolean): Prepared {
  if (!isPlainObject(data)) throw invalid('data', 'a training data object', data);
  checkEmbeddings('trainHead', data.embeddings, data.shape, undefined, data.masks);
  const [n, t, d] = data.shape;
  if (n === 0 || t === 0) throw new UsageError('trainHead: the dataset is empty (no clips or no frames)');
  if (d === 0) throw new UsageError('trainHead: the embeddings have size 0');
  const masks = new Uint8Array(n * t).fill(1);
  if (data.masks) for (let i = 0; i < n * t; i++) masks[i] = data.masks[i] ? 1 : 0;
  const expected = frame ? n * t : n;
  if (!Array.isArray(data.labels) || data.labels.length !== expected) {
    throw invalid(
      'data.labels',
      `${expected} labels (${frame ? 'one per frame, N*T' : 'one per clip, N'})`,
      data.labels?.length ?? data.labels,
    );
  }
  const used = new Set<string>();
  data.labels.forEach((label, i) => {
    const masked = frame && !masks[i];
    if (masked) return;
    if (typeof label !== 'string' || label.length === 0)
      throw invalid(`data.labels[${i}]`, 'a non-empty string', label);
    used.add(label);
  });
  let classes: string[];
  if (options.labels !== undefined) {
    if (!Array.isArray(options.labels) || options.labels.some((l) => typeof l !== 'string' || !l)) {
      throw invalid('labels', 'an array of non-empty strings', options.labels);
    }
    classes = [...options.labels];
    for (const label of used)
      if (!classes.includes(label)) throw invalid('labels', `a list containing '${label}'`, options.labels);
  } else {
    classes = [...used].sort();
  }
  if (used.size < 2) {
    throw new UsageError(
      `trainHead: the data has only one class (${[...used].join(', ') || 'none'}); a classifier needs at least two`,
    );
  }
  const targets = new Int32Array(expected).fill(-1);
  data.labels.forEach((label, i) => {
    if (label !== null && (!frame || masks[i])) targets[i] = classes.indexOf(label);
  });
  let groups: string[];
  if (data.groups !== undefined) {
    if (!Array.isArray(data.groups) || data.groups.length !== n)
      throw invalid('data.groups', `${n} group ids (one per clip)`, data.groups?.length);
    groups = data.groups.map(String);
  } else {
    groups = Array.from({ length: n }, (_, i) => `#${i}`);
  }
  return { n, t, d, classes, targets, masks, groups };
}

function shuffle<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * Splits clip indices into train and validation by group, stratified by the group's most
 * common label: each class keeps about `fraction` of its groups for validation (at least one
 * when it has two or more groups).
 */
export function stratifiedGroupSplit(
  labelOfClip: readonly number[],
  groups: readonly string[],
  fraction: number,
  rng: () => number,
): { train: number[]; val: number[] } {
  const clipsOf = new Map<string, number[]>();
  groups.forEach((g, i) => (clipsOf.get(g) ?? clipsOf.set(g, []).get(g)!).push(i));
  const byClass = new Map<number, string[]>();
  for (const [group, clips] of clipsOf) {
    const counts = new Map<number, number>();
    for (const c of clips) counts.set(labelOfClip[c], (counts.get(labelOfClip[c]) ?? 0) + 1);
    const label = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
    (byClass.get(label) ?? byClass.set(label, []).get(label)!).push(group);
  }
  const valGroups = new Set<string>();
  if (fraction > 0) {
    for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
      const list = shuffle([...byClass.get(label)!].sort(), rng);
      if (list.length < 2) continue;
      const k = Math.min(list.length - 1, Math.max(1, Math.round(list.length * fraction)));
      for (const g of list.slice(0, k)) valGroups.add(g);
    }
  }
  const train: number[] = [];
  const val: number[] = [];
  groups.forEach((g, i) => (valGroups.has(g) ? val : train).push(i));
  return { train, val };
}

/** The majority label of each clip (its own label in clip mode). */
function clipLabels(p: Prepared, frame: boolean): number[] {
  if (!frame) return Array.from(p.targets);
  return Array.from({ length: p.n }, (_, i) => {
    const counts = new Map<number, number>();
    for (let s = 0; s < p.t; s++) {
      const c = p.targets[i * p.t + s];
      if (c >= 0) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? 0;
  });
}

function classWeights(
  p: Prepared,
  train: number[],
  frame: boolean,
  option: TrainHeadOptions['classWeight'],
): Float32Array {
  const weights = new Float32Array(p.classes.length).fill(1);
  if (option === undefined) return weights;
  if (option === 'balanced') {
    const counts = new Float32Array(p.classes.length);
    let total = 0;
    for (const i of train) {
      for (let s = 0; s < (frame ? p.t : 1); s++) {
        const c = p.targets[frame ? i * p.t + s : i];
        if (c >= 0) {
          counts[c] += 1;
          total += 1;
        }
      }
    }
    counts.forEach((count, c) => (weights[c] = count > 0 ? total / (p.classes.length * count) : 0));
    return weights;
  }
  if (!isPlainObject(option))
    throw invalid('classWeight', "'balanced' or an object of label weights", option);
  for (const [label, w] of Object.entries(option)) {
    const c = p.classes.indexOf(label);
    if (c < 0) throw invalid(`classWeight.${label}`, `a label among ${p.classes.join(', ')}`, label);
    weights[c] = positiveNumber(`classWeight.${label}`, w);
  }
  return weights;
}

interface Batch {
  x: tf.Tensor3D;
  y: tf.Tensor;
  w: tf.Tensor;
  /** [b*T]: 1 where the frame holds a non-zero value (what the head's `Masking` keeps). */
  keep: Float32Array;
}

/** Packs clips into tensors: x [b, T, D] (padding zeroed), one-hot y and per-target weights w. */
function makeBatch(
  data: TrainData,
  p: Prepared,
  frame: boolean,
  indices: number[],
  weights: Float32Array,
  dropout: number,
  rng: Arc4Random | undefined,
): Batch {
  const { t, d } = p;
  const b = indices.length;
  const x = new Float32Array(b * t * d);
  const targets = new Int32Array(frame ? b * t : b);
  const w = new Float32Array(frame ? b * t : b);
  const keep = 1 - dropout;
  const kept = new Float32Array(b * t);
  const draws = rng && dropout > 0 ? new Float64Array(d) : undefined;
  indices.forEach((clip, k) => {
    for (let s = 0; s < t; s++) {
      const src = (clip * t + s) * d;
      const dst = (k * t + s) * d;
      if (!p.masks[clip * t + s]) continue; // stays zero: masked by the head
      if (rng && draws) {
        rng.fill(draws);
        for (let j = 0; j < d; j++) x[dst + j] = draws[j] < keep ? data.embeddings[src + j] / keep : 0;
      } else {
        x.set(data.embeddings.subarray(src, src + d), dst);
      }
      for (let j = 0; j < d; j++) {
        if (x[dst + j] !== 0) {
          kept[k * t + s] = 1;
          break;
        }
      }
    }
    if (frame) {
      for (let s = 0; s < t; s++) {
        const c = p.targets[clip * t + s];
        targets[k * t + s] = Math.max(c, 0);
        w[k * t + s] = c >= 0 && p.masks[clip * t + s] ? weights[c] : 0;
      }
    } else {
      targets[k] = p.targets[clip];
      w[k] = weights[p.targets[clip]];
    }
  });
  return tf.tidy(() => {
    const yTensor = tf.oneHot(tf.tensor1d(targets, 'int32'), p.classes.length); // [b(*T), C]
    return {
      x: tf.tensor3d(x, [b, t, d]),
      y: frame ? tf.reshape(yTensor, [b, t, p.classes.length]) : yTensor, // [b, T, C] in frame mode
      w: frame ? tf.tensor2d(w, [b, t]) : tf.tensor1d(w),
      keep: kept,
    };
  });
}

/** Weighted cross-entropy: sum(w * -log p[y]) / sum(w). */
function weightedLoss(probs: tf.Tensor, y: tf.Tensor, w: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const nll = tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probs, 1e-7, 1))), -1)); // [b] or [b, T]
    return tf.div(tf.sum(tf.mul(nll, w)), tf.maximum(tf.sum(w), 1e-7)) as tf.Scalar;
  });
}

/**
 * Keeps a long loop responsive: `tick()` checks the signal and, once about `every` ms of
 * synchronous work have passed, yields to the event loop (as `model.fit`'s `yieldEvery`
 * does), so signal handlers, timers and progress run while training.
 */
class Pace {
  private last = performance.now();

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly every = 50,
  ) {}

  async tick(): Promise<void> {
    this.signal?.throwIfAborted();
    if (performance.now() - this.last < this.every) return;
    await new Promise(setImmediate);
    this.last = performance.now();
    this.signal?.throwIfAborted();
  }
}

/** Loss and accuracy over some clips, in inference mode (an ensemble's averaged probabilities). */
async function evaluate(
  models: tf.LayersModel | readonly tf.LayersModel[],
  data: TrainData,
  p: Prepared,
  frame: boolean,
  indices: number[],
  weights: Float32Array,
  batchSize: number,
  pace: Pace,
): Promise<{ loss: number; acc: number }> {
  let lossSum = 0;
  let weightSum = 0;
  let correct = 0;
  let counted = 0;
  for (let i = 0; i < indices.length; i += batchSize) {
    await pace.tick();
    const batch = makeBatch(data, p, frame, indices.slice(i, i + batchSize), weights, 0, undefined);
    const [loss, wsum, hits, count] = tf.tidy(() => {
      const probs = averagedPredict(models, batch.x);
      const valid = tf.cast(tf.greater(batch.w, 0), 'float32');
      const hit = tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(batch.y, -1)), 'float32');
      return [
        tf.mul(weightedLoss(probs, batch.y, batch.w), tf.sum(batch.w)),
        tf.sum(batch.w),
        tf.sum(tf.mul(hit, valid)),
        tf.sum(valid),
      ];
    });
    tf.dispose([batch.x, batch.y, batch.w]);
    const values = await Promise.all([loss, wsum, hits, count].map((s) => s.data()));
    tf.dispose([loss, wsum, hits, count]);
    lossSum += values[0][0];
    weightSum += values[1][0];
    correct += values[2][0];
    counted += values[3][0];
  }
  return { loss: weightSum > 0 ? lossSum / weightSum : 0, acc: counted > 0 ? correct / counted : 0 };
}

/** One step through autodiff over the layers (the `mean` head). */
function slowStep(model: tf.LayersModel, batch: Batch, optimizer: tf.Optimizer, variables: tf.Variable[]) {
  let hits: tf.Scalar | undefined;
  let counted: tf.Scalar | undefined;
  const loss = optimizer.minimize(
    () => {
      const probs = model.apply(batch.x, { training: true }) as tf.Tensor;
      // Running accuracy from the training pass itself (as Keras reports it): no extra pass.
      const valid = tf.cast(tf.greater(batch.w, 0), 'float32');
      hits = tf.keep(
        tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(batch.y, -1)), 'float32'), valid)),
      ) as tf.Scalar;
      counted = tf.keep(tf.sum(valid)) as tf.Scalar;
      return weightedLoss(probs, batch.y, batch.w);
    },
    true /* returnCost */,
    variables,
  )!;
  return { loss, hits: hits!, counted: counted! };
}

/** Most heads in an ensemble. */
const MAX_ENSEMBLE = 64;

/** `valSplit`, or `validationSplit`, its deprecated name. */
function valSplitOf(options: TrainHeadOptions): number {
  const { valSplit, validationSplit } = options;
  if (valSplit !== undefined && validationSplit !== undefined && valSplit !== validationSplit)
    throw new TypeError(
      `\`valSplit\` (${String(valSplit)}) and \`validationSplit\` (${String(validationSplit)}, its deprecated name) conflict: give \`valSplit\` only`,
    );
  const [name, value] =
    valSplit !== undefined ? ['valSplit', valSplit] : ['validationSplit', validationSplit];
  return value === undefined ? 0.2 : numberInRange(name, value, 0, 1, { exclusiveMax: true });
}

function resolveOptions(options: TrainHeadOptions) {
  if (!isPlainObject(options)) throw invalid('options', 'an options object', options);
  if (options.onEpoch !== undefined && typeof options.onEpoch !== 'function')
    throw invalid('onEpoch', 'a function', options.onEpoch);
  if (options.onCheckpoint !== undefined && typeof options.onCheckpoint !== 'function')
    throw invalid('onCheckpoint', 'a function', options.onCheckpoint);
  return {
    head: resolveHeadConfig(options.head ?? {}),
    epochs: options.epochs === undefined ? 100 : positiveInteger('epochs', options.epochs, LIMITS.epochs),
    batchSize:
      options.batchSize === undefined ? 16 : positiveInteger('batchSize', options.batchSize, LIMITS.batch),
    learningRate:
      options.learningRate === undefined ? 1e-3 : positiveNumber('learningRate', options.learningRate),
    // Kept under its old name: checkpoints record the resolved options, and `--resume` compares them.
    validationSplit: valSplitOf(options),
    patience:
      options.patience === undefined ? 10 : nonNegativeInteger('patience', options.patience, LIMITS.epochs),
    monitor:
      options.monitor === undefined ? ('val_loss' as Monitor) : oneOf('monitor', options.monitor, MONITORS),
    minDelta:
      options.minDelta === undefined ? DEFAULT_MIN_DELTA : nonNegativeNumber('minDelta', options.minDelta),
    lrSchedule:
      options.lrSchedule === undefined
        ? DEFAULT_LR_SCHEDULE
        : oneOf('lrSchedule', options.lrSchedule, LR_SCHEDULES),
    ensemble:
      options.ensemble === undefined ? 1 : positiveInteger('ensemble', options.ensemble, MAX_ENSEMBLE),
    classWeight: options.classWeight ?? null,
    seed: options.seed === undefined ? 42 : nonNegativeInteger('seed', options.seed, LIMITS.seed),
  };
}

type ResolvedTrainOptions = ReturnType<typeof resolveOptions>;

/**
 * The settings a training run is defined by, every default filled in (JSON): what a checkpoint
 * records, and what `train --resume` compares.
 */
export function trainSettings(options: TrainHeadOptions): Record<string, unknown> {
  return JSON.parse(JSON.stringify(resolveOptions(options))) as Record<string, unknown>;
}

/** What one head's training works on: the data, the model and its optimiser, and how it steps. */
interface Fit {
  data: TrainData;
  p: Prepared;
  frame: boolean;
  o: ResolvedTrainOptions;
  split: { train: number[]; val: number[] };
  /** Per-class loss weights. */
  weights: Float32Array;
  model: tf.LayersModel;
  optimizer: tf.AdamOptimizer;
  variables: tf.Variable[];
  /** The head's hand-written step, or undefined to train through autodiff. */
  fast: FastStep | undefined;
  pace: Pace;
  rng: Arc4Random;
}

/** What every member of an ensemble trains on: a `Fit` less its own model, optimiser, step and shuffling. */
type FitContext = Omit<Fit, 'model' | 'optimizer' | 'variables' | 'fast' | 'rng'>;

/** One pass over the training clips in a fresh order: the mean batch loss and the running accuracy. */
async function trainEpoch(f: Fit): Promise<{ loss: number; acc: number }> {
  const order = shuffle([...f.split.train], () => f.rng.next());
  let lossSum = 0;
  let batches = 0;
  let correct = 0;
  let seen = 0;
  for (let i = 0; i < order.length; i += f.o.batchSize) {
    await f.pace.tick();
    const batch = makeBatch(
      f.data,
      f.p,
      f.frame,
      order.slice(i, i + f.o.batchSize),
      f.weights,
      f.o.head.dropout,
      f.rng,
    );
    let result: { loss: tf.Scalar; hits: tf.Scalar; counted: tf.Scalar };
    try {
      result = f.fast
        ? f.fast.run(batch, f.optimizer, f.variables)
        : slowStep(f.model, batch, f.optimizer, f.variables);
    } finally {
      tf.dispose([batch.x, batch.y, batch.w]);
    }
    const values = await Promise.all([result.loss, result.hits, result.counted].map((s) => s.data()));
    tf.dispose([result.loss, result.hits, result.counted]);
    lossSum += values[0][0];
    correct += values[1][0];
    seen += values[2][0];
    batches += 1;
  }
  return { loss: lossSum / Math.max(batches, 1), acc: seen > 0 ? correct / seen : 0 };
}

/** The early-stopping state, as a checkpoint holds it. */
export interface EarlyState {
  bestEpoch: number;
  best: number | null;
  wait: number;
  stopped: boolean;
}

/**
 * Early stopping (Keras's `EarlyStopping` with `restore_best_weights`): an epoch improves when
 * the monitored value beats the best by more than `minDelta`; after more than `patience`
 * epochs without one, it stops. The best epoch's weights are kept.
 */
class EarlyStopping {
  state: EarlyState = { bestEpoch: 0, best: null, wait: 0, stopped: false };
  weights: tf.Tensor[] | undefined;

  constructor(
    private readonly higherIsBetter: boolean,
    private readonly minDelta: number,
    private readonly patience: number,
  ) {}

  improves(value: number, best: number | null): boolean {
    if (best === null) return true;
    return this.higherIsBetter ? value > best + this.minDelta : value < best - this.minDelta;
  }

  /** Records an epoch; true when it is time to stop. */
  update(model: tf.LayersModel, epoch: number, value: number): boolean {
    const s = this.state;
    if (this.improves(value, s.best)) {
      if (this.weights) tf.dispose(this.weights);
      this.weights = model.getWeights().map((w) => tf.clone(w));
      Object.assign(s, { bestEpoch: epoch, best: value, wait: 0 });
    } else {
      s.wait += 1;
    }
    s.stopped = s.wait > this.patience;
    return s.stopped;
  }

  dispose(): void {
    if (this.weights) tf.dispose(this.weights);
    this.weights = undefined;
  }
}

/** The learning-rate schedule's state: the rate now and, for `plateau`, its own wait and best. */
export interface ScheduleState {
  lr: number;
  wait: number;
  best: number | null;
}

/**
 * The rate for `epoch` (1-based). `cosine` anneals from the base rate towards 0 over the most
 * epochs; `plateau` (Keras's `ReduceLROnPlateau`, factor 0.5) halves it after half the
 * patience without an improvement, down to 1/64 of the base rate.
 */
function scheduledRate(o: ResolvedTrainOptions, s: ScheduleState, epoch: number): number {
  if (o.lrSchedule === 'cosine')
    return (o.learningRate * (1 + Math.cos((Math.PI * (epoch - 1)) / o.epochs))) / 2;
  return s.lr;
}

function updatePlateau(o: ResolvedTrainOptions, s: ScheduleState, improved: boolean, value: number): void {
  if (o.lrSchedule !== 'plateau') return;
  if (improved) {
    s.best = value;
    s.wait = 0;
    return;
  }
  s.wait += 1;
  if (s.wait >= Math.max(1, Math.ceil(o.patience / 2))) {
    s.lr = Math.max(s.lr / 2, o.learningRate / 64);
    s.wait = 0;
  }
}

/** One member's state after a whole epoch: everything needed to go on bit for bit. */
export interface MemberState {
  epoch: number;
  /** The model's weights, in `model.getWeights()` order. */
  weights: Float32Array[];
  /** Adam: its step count, bias-correction powers and moments (every m, then every v). */
  optimizer: { iterations: number; accBeta1: number; accBeta2: number; moments: Float32Array[] };
  /** The training RNG's state (seedrandom's ARC4: `{ i, j, S }`). */
  rng: { i: number; j: number; S: number[] };
  early: EarlyState & { weights: Float32Array[] | null };
  schedule: ScheduleState;
  /** The epochs so far, as `onEpoch` received them. */
  rows: EpochProgress[];
}

/**
 * Everything a training run needs to go on after an interruption, in memory (`onCheckpoint`
 * receives it after every epoch; `resume` takes it back). The model folder stores it.
 */
export interface TrainCheckpoint {
  /** The (0-based) ensemble member being trained. */
  member: number;
  /** The members finished before it: their kept weights and figures. */
  done: Array<{ weights: Float32Array[]; metrics: TrainMetrics }>;
  /** The member being trained, after its last whole epoch; null before its first. */
  current: MemberState | null;
  /** What it was trained on, checked on resume. */
  data: { shape: [number, number, number]; classes: string[]; train: number; val: number };
}

/** Adam's fields that `getWeights` leaves out (tfjs recomputes them with `pow`, which may differ in the last bit). */
type AdamInternals = { accBeta1: tf.Variable; accBeta2: tf.Variable; learningRate: number };

async function snapshot(
  f: Fit,
  early: EarlyStopping,
  schedule: ScheduleState,
  epoch: number,
  rows: EpochProgress[],
): Promise<MemberState> {
  const read = (ts: tf.Tensor[]): Promise<Float32Array[]> =>
    Promise.all(ts.map(async (t) => new Float32Array(await t.data())));
  const named = await f.optimizer.getWeights();
  const adam = f.optimizer as unknown as AdamInternals;
  return {
    epoch,
    weights: await read(f.model.getWeights()),
    optimizer: {
      iterations: (await named[0].tensor.data())[0],
      accBeta1: (await adam.accBeta1.data())[0],
      accBeta2: (await adam.accBeta2.data())[0],
      moments: await read(named.slice(1).map((n) => n.tensor)),
    },
    rng: f.rng.state(),
    early: { ...early.state, weights: early.weights ? await read(early.weights) : null },
    schedule: { ...schedule },
    rows: rows.map((r) => ({ ...r })),
  };
}

/** Puts a member's saved state back: weights, Adam's state, early stopping. */
async function restore(f: Fit, early: EarlyStopping, s: MemberState): Promise<void> {
  const shapes = f.model.getWeights().map((w) => w.shape);
  if (s.weights.length !== shapes.length)
    throw new UsageError('trainHead: the checkpoint holds another head (its weights do not match)');
  setWeightValues(f.model, s.weights);
  if (s.early.weights) early.weights = s.early.weights.map((v, i) => tf.tensor(v, shapes[i]));
  early.state = {
    bestEpoch: s.early.bestEpoch,
    best: s.early.best,
    wait: s.early.wait,
    stopped: s.early.stopped,
  };
  if (s.optimizer.moments.length > 0) {
    const half = f.variables.length;
    const tensors = s.optimizer.moments.map((v, i) => tf.tensor(v, f.variables[i % half].shape));
    const iter = tf.scalar(s.optimizer.iterations, 'int32');
    await f.optimizer.setWeights([
      { name: 'iter', tensor: iter },
      ...tensors.map((tensor, i) => ({
        name: `${f.variables[i % half].name}/${i < half ? 'm' : 'v'}`,
        tensor,
      })),
    ]);
    tf.dispose([iter, ...tensors]);
  }
  const adam = f.optimizer as unknown as AdamInternals;
  adam.accBeta1.assign(tf.scalar(s.optimizer.accBeta1));
  adam.accBeta2.assign(tf.scalar(s.optimizer.accBeta2));
}

function setWeightValues(model: tf.LayersModel, values: Float32Array[]): void {
  const tensors = model.getWeights().map((w, i) => tf.tensor(values[i], w.shape));
  model.setWeights(tensors);
  tf.dispose(tensors);
}

/** Figures of one epoch and the monitored value: the validation figure, or the training one without a split. */
function monitored(o: ResolvedTrainOptions, e: EpochProgress): { name: string; value: number } {
  const acc = o.monitor === 'val_acc';
  if (e.valLoss === null) return { name: acc ? 'acc' : 'loss', value: acc ? e.acc : e.loss };
  return { name: o.monitor, value: acc ? e.valAcc! : e.valLoss };
}

/** One member's epochs, with early stopping; leaves the best weights in the model and returns its metrics. */
async function fitEpochs(
  f: Fit,
  resume: MemberState | null,
  onEpoch: TrainHeadOptions['onEpoch'],
  save: ((state: MemberState) => Promise<void>) | undefined,
  member: number | undefined,
): Promise<TrainMetrics> {
  const started = performance.now();
  const early = new EarlyStopping(f.o.monitor === 'val_acc', f.o.minDelta, f.o.patience);
  const schedule: ScheduleState = { lr: f.o.learningRate, wait: 0, best: null };
  const rows: EpochProgress[] = [];
  const adam = f.optimizer as unknown as AdamInternals;
  let first = 1;
  try {
    if (resume) {
      await restore(f, early, resume);
      Object.assign(schedule, resume.schedule);
      rows.push(...resume.rows);
      first = resume.epoch + 1;
    }
    let monitorName = monitored(
      f.o,
      rows[rows.length - 1] ?? {
        epoch: 0,
        loss: 0,
        acc: 0,
        valLoss: f.split.val.length ? 0 : null,
        valAcc: null,
      },
    ).name;
    for (let epoch = first; epoch <= f.o.epochs && !early.state.stopped; epoch++) {
      const epochStart = performance.now();
      const lr = scheduledRate(f.o, schedule, epoch);
      adam.learningRate = lr;
      const train = await trainEpoch(f);
      const valEval = f.split.val.length
        ? await evaluate(f.model, f.data, f.p, f.frame, f.split.val, f.weights, 64, f.pace)
        : undefined;
      const now = performance.now();
      const progress: EpochProgress = {
        epoch,
        loss: train.loss,
        acc: train.acc,
        valLoss: valEval?.loss ?? null,
        valAcc: valEval?.acc ?? null,
        lr,
        seconds: (now - epochStart) / 1000,
        ...(member !== undefined ? { member } : {}),
      };
      rows.push(progress);
      const { name, value } = monitored(f.o, progress);
      monitorName = name;
      const improved = early.improves(value, early.state.best);
      updatePlateau(f.o, schedule, improved, value);
      early.update(f.model, epoch, value);
      onEpoch?.({
        ...progress,
        epochs: f.o.epochs,
        etaSeconds: (((now - started) / (epoch - first + 1)) * (f.o.epochs - epoch)) / 1000,
      });
      if (save) await save(await snapshot(f, early, schedule, epoch, rows));
    }
    return await memberMetrics(f, early, rows, monitorName, member);
  } finally {
    early.dispose();
  }
}

/** After a member's last epoch: why it stopped, its best weights put back in the model, and its metrics. */
async function memberMetrics(
  f: Fit,
  early: EarlyStopping,
  rows: EpochProgress[],
  monitorName: string,
  member: number | undefined,
): Promise<TrainMetrics> {
  const last = rows.length;
  const stop: StopInfo = {
    reason: early.state.stopped ? 'early' : 'epochs',
    epoch: last,
    monitor: monitorName,
    bestEpoch: early.state.bestEpoch || last,
    best: early.state.best ?? NaN,
    minDelta: f.o.minDelta,
    patience: f.o.patience,
  };
  debug('trainHead: %s', stopMessage(stop));
  if (early.weights) f.model.setWeights(early.weights);
  const bestEntry = rows[stop.bestEpoch - 1];
  const finalTrain = await evaluate(f.model, f.data, f.p, f.frame, f.split.train, f.weights, 64, f.pace);
  return {
    epochs: last,
    bestEpoch: stop.bestEpoch,
    loss: finalTrain.loss,
    acc: finalTrain.acc,
    valLoss: bestEntry?.valLoss ?? null,
    valAcc: bestEntry?.valAcc ?? null,
    trainClips: f.split.train.length,
    valClips: f.split.val.length,
    seed: f.o.seed + (member === undefined ? 0 : member - 1),
    backend: activeBackendName(),
    stop,
    // The history stays the same from run to run: no wall times.
    history: rows.map(({ epoch, loss, acc, valLoss, valAcc, lr }) => ({
      epoch,
      loss,
      acc,
      valLoss,
      valAcc,
      lr,
    })),
  };
}

/** What framewise.json records of a trained head. */
function modelInfo(
  p: Prepared,
  o: ResolvedTrainOptions,
  options: TrainHeadOptions,
  metrics: TrainMetrics,
): ModelInfo {
  const backbone = options.backbone;
  return {
    format: 'framewise-model',
    formatVersion: 1,
    version: FRAMEWISE_VERSION,
    labels: p.classes,
    mode: o.head.mode,
    head: o.head,
    dim: p.d,
    frames: p.t,
    size: backbone?.inputSize ?? 0,
    sampling: options.sampling ?? null,
    backbone: backbone?.spec ?? '',
    backboneId: backbone?.id ?? '',
    backboneName: backbone?.name ?? '',
    normalize: backbone?.normalize ?? '0..1',
    metrics,
    backend: currentBackend() ?? null,
    createdAt: new Date().toISOString(),
  };
}

/** The figures of an ensemble: its averaged probabilities on both splits, and each member's own. */
async function ensembleMetrics(
  models: tf.LayersModel[],
  members: TrainMetrics[],
  ctx: FitContext,
): Promise<TrainMetrics> {
  const train = await evaluate(
    models,
    ctx.data,
    ctx.p,
    ctx.frame,
    ctx.split.train,
    ctx.weights,
    64,
    ctx.pace,
  );
  const val = ctx.split.val.length
    ? await evaluate(models, ctx.data, ctx.p, ctx.frame, ctx.split.val, ctx.weights, 64, ctx.pace)
    : undefined;
  return {
    epochs: Math.max(...members.map((m) => m.epochs)),
    bestEpoch: members[0].bestEpoch,
    loss: train.loss,
    acc: train.acc,
    valLoss: val?.loss ?? null,
    valAcc: val?.acc ?? null,
    trainClips: ctx.split.train.length,
    valClips: ctx.split.val.length,
    seed: ctx.o.seed,
    backend: activeBackendName(),
    history: [],
    members,
  };
}

/** Trains the ensemble's members one after another (skipping those a resumed checkpoint holds finished), checkpointing as it goes. */
async function trainMembers(
  ctx: FitContext,
  about: TrainCheckpoint['data'],
  options: TrainHeadOptions,
): Promise<{ models: tf.LayersModel[]; metrics: TrainMetrics }> {
  const { p, o } = ctx;
  const resume = options.resume;
  const models: tf.LayersModel[] = [];
  const done: TrainCheckpoint['done'] = [];
  try {
    for (let k = 0; k < o.ensemble; k++) {
      const seed = o.seed + k;
      const model = buildHead(o.head, { dim: p.d, classes: p.classes.length }, seed);
      models.push(model);
      if (resume && k < resume.member) {
        setWeightValues(model, resume.done[k].weights);
        done.push(resume.done[k]);
        continue;
      }
      const optimizer = tf.train.adam(o.learningRate);
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      // The recurrent heads train through a hand-written step on the same variables; a head
      // whose registry entry has no fast step (`mean`: no recurrence) through autodiff.
      const fast = fastStep(model, o.head, weightedLoss);
      debug('trainHead: member %d, %s step', k + 1, fast ? 'fast' : 'autodiff');
      const state = resume && k === resume.member ? resume.current : null;
      const memberRng = new Arc4Random(
        state ? state.rng : seedrandom(`${seed}/train`, { state: true }).state(),
      );
      const save = options.onCheckpoint
        ? (current: MemberState) =>
            Promise.resolve(options.onCheckpoint!({ member: k, done, current, data: about }))
        : undefined;
      try {
        const fit: Fit = { ...ctx, model, optimizer, variables, fast, rng: memberRng };
        const metrics = await fitEpochs(
          fit,
          state,
          options.onEpoch,
          save,
          o.ensemble > 1 ? k + 1 : undefined,
        );
        const kept = await Promise.all(model.getWeights().map(async (w) => new Float32Array(await w.data())));
        done.push({ weights: kept, metrics });
      } finally {
        optimizer.dispose();
      }
      // The member is whole: a checkpoint now starts the next one afresh.
      if (options.onCheckpoint && k + 1 < o.ensemble)
        await options.onCheckpoint({ member: k + 1, done, current: null, data: about });
    }
    const members = done.map((d) => d.metrics);
    const metrics = o.ensemble === 1 ? members[0] : await ensembleMetrics(models, members, ctx);
    return { models, metrics };
  } catch (error) {
    for (const m of models) m.dispose();
    throw error;
  }
}

/**
 * Trains a head on frame embeddings and returns the classifier with the best weights (by the
 * monitored figure: the validation loss unless told otherwise; the training figure without a
 * validation split). `ensemble: N` trains N heads (seeds seed..seed+N-1, the same split), each
 * with its own early stopping, and the classifier averages their probabilities.
 */
export async function trainHead(data: TrainData, options: TrainHeadOptions = {}): Promise<HeadClassifier> {
  const signal = checkSignal('signal', options.signal);
  const o = resolveOptions(options);
  const frame = o.head.mode === 'frame';
  const p = validate(data, options, frame);
  const rng = seedrandom(String(o.seed));
  const split = stratifiedGroupSplit(clipLabels(p, frame), p.groups, o.validationSplit, rng);
  if (split.train.length === 0)
    throw new UsageError('trainHead: no clips left for training after the validation split');
  const weights = classWeights(p, split.train, frame, options.classWeight);
  const about = {
    shape: [p.n, p.t, p.d] as [number, number, number],
    classes: p.classes,
    train: split.train.length,
    val: split.val.length,
  };
  const resume = options.resume;
  if (resume) checkResumable(resume, about, o.ensemble);
  debug(
    'trainHead: %s/%s x%d, %d train + %d val clips, T=%d D=%d, classes %s',
    o.head.type,
    o.head.mode,
    o.ensemble,
    split.train.length,
    split.val.length,
    p.t,
    p.d,
    p.classes.join(','),
  );
  const pace = new Pace(signal);
  const ctx = { data, p, frame, o, split, weights, pace };

  const { models, metrics } = await withHeadBackend(
    () => trainMembers(ctx, about, options),
    options.onWarning,
  );
  const info = modelInfo(p, o, options, metrics);
  if (o.ensemble > 1) info.ensemble = { size: o.ensemble, seeds: models.map((_, k) => o.seed + k) };
  return new TfHeadClassifier(models, info);
}

/** A UsageError unless a checkpoint was made on data like `about` for an ensemble of `size`. */
function checkResumable(c: TrainCheckpoint, about: TrainCheckpoint['data'], size: number): void {
  const same = JSON.stringify(c.data) === JSON.stringify(about);
  if (!same) {
    throw new UsageError(
      `trainHead: the checkpoint was made on other data (${JSON.stringify(c.data)}; now ${JSON.stringify(about)})`,
    );
  }
  if (c.member >= size || c.done.length !== c.member)
    throw new UsageError(
      `trainHead: the checkpoint is for another ensemble (member ${c.member + 1}, ensemble of ${size})`,
    );
}
