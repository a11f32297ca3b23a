/**
 * Trains a temporal head on frame embeddings; the backbone stays frozen (and the wasm backend
 * has no conv-gradient kernels anyway). Adam, a stratified validation split by group (a video
 * never lands in both splits), early stopping on validation loss keeping the best weights,
 * optional class weights, and a seed that makes a run repeatable on the same backend.
 */
import { tf } from '../tfjs/tf.js';
import seedrandom from 'seedrandom';
import { UsageError } from '../errors.js';
import { debug } from '../log.js';
import { checkSignal, invalid, isPlainObject, LIMITS, nonNegativeInteger, numberInRange, positiveInteger, positiveNumber } from '../validate.js';
import { activeBackendName, currentBackend, withHeadBackend } from '../tfjs/backend.js';
import type { BackboneInfo } from '../embedding/backbone-spec.js';
import { checkEmbeddings, HeadClassifier, type EpochProgress, type ModelInfo, type TrainMetrics } from './classifier.js';
import { fastStep, type FastStep } from './fast-step.js';
import { buildHead, resolveHeadConfig, type HeadOptions } from './heads.js';
import { FRAMEWISE_VERSION } from '../version.js';

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
  /** Fraction of groups held out per class for validation (0 turns it off). @default 0.2 */
  validationSplit?: number;
  /** Epochs without a better validation loss before stopping. @default 10 */
  patience?: number;
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
    throw invalid('data.labels', `${expected} labels (${frame ? 'one per frame, N*T' : 'one per clip, N'})`, data.labels?.length ?? data.labels);
  }
  const used = new Set<string>();
  data.labels.forEach((label, i) => {
    const masked = frame && !masks[i];
    if (masked) return;
    if (typeof label !== 'string' || label.length === 0) throw invalid(`data.labels[${i}]`, 'a non-empty string', label);
    used.add(label);
  });
  let classes: string[];
  if (options.labels !== undefined) {
    if (!Array.isArray(options.labels) || options.labels.some((l) => typeof l !== 'string' || !l)) {
      throw invalid('labels', 'an array of non-empty strings', options.labels);
    }
    classes = [...options.labels];
    for (const label of used) if (!classes.includes(label)) throw invalid('labels', `a list containing '${label}'`, options.labels);
  } else {
    classes = [...used].sort();
  }
  if (used.size < 2) {
    throw new UsageError(`trainHead: the data has only one class (${[...used].join(', ') || 'none'}); a classifier needs at least two`);
  }
  const targets = new Int32Array(expected).fill(-1);
  data.labels.forEach((label, i) => {
    if (label !== null && (!frame || masks[i])) targets[i] = classes.indexOf(label);
  });
  let groups: string[];
  if (data.groups !== undefined) {
    if (!Array.isArray(data.groups) || data.groups.length !== n) throw invalid('data.groups', `${n} group ids (one per clip)`, data.groups?.length);
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

function classWeights(p: Prepared, train: number[], frame: boolean, option: TrainHeadOptions['classWeight']): Float32Array {
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
  if (!isPlainObject(option)) throw invalid('classWeight', "'balanced' or an object of label weights", option);
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
  rng: (() => number) | undefined,
): Batch {
  const { t, d } = p;
  const b = indices.length;
  const x = new Float32Array(b * t * d);
  const targets = new Int32Array(frame ? b * t : b);
  const w = new Float32Array(frame ? b * t : b);
  const keep = 1 - dropout;
  const kept = new Float32Array(b * t);
  indices.forEach((clip, k) => {
    for (let s = 0; s < t; s++) {
      const src = (clip * t + s) * d;
      const dst = (k * t + s) * d;
      if (!p.masks[clip * t + s]) continue; // stays zero: masked by the head
      if (rng && dropout > 0) {
        for (let j = 0; j < d; j++) x[dst + j] = rng() < keep ? data.embeddings[src + j] / keep : 0;
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

/** Loss and accuracy over some clips, in inference mode. */
async function evaluate(
  model: tf.LayersModel,
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
      const probs = model.predict(batch.x) as tf.Tensor;
      const valid = tf.cast(tf.greater(batch.w, 0), 'float32');
      const hit = tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(batch.y, -1)), 'float32');
      return [tf.mul(weightedLoss(probs, batch.y, batch.w), tf.sum(batch.w)), tf.sum(batch.w), tf.sum(tf.mul(hit, valid)), tf.sum(valid)];
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
      hits = tf.keep(tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(batch.y, -1)), 'float32'), valid))) as tf.Scalar;
      counted = tf.keep(tf.sum(valid)) as tf.Scalar;
      return weightedLoss(probs, batch.y, batch.w);
    },
    true /* returnCost */,
    variables,
  )!;
  return { loss, hits: hits!, counted: counted! };
}

function resolveOptions(options: TrainHeadOptions) {
  if (!isPlainObject(options)) throw invalid('options', 'an options object', options);
  if (options.onEpoch !== undefined && typeof options.onEpoch !== 'function') throw invalid('onEpoch', 'a function', options.onEpoch);
  return {
    head: resolveHeadConfig(options.head ?? {}),
    epochs: options.epochs === undefined ? 100 : positiveInteger('epochs', options.epochs, LIMITS.epochs),
    batchSize: options.batchSize === undefined ? 16 : positiveInteger('batchSize', options.batchSize, LIMITS.batch),
    learningRate: options.learningRate === undefined ? 1e-3 : positiveNumber('learningRate', options.learningRate),
    validationSplit:
      options.validationSplit === undefined ? 0.2 : numberInRange('validationSplit', options.validationSplit, 0, 1, { exclusiveMax: true }),
    patience: options.patience === undefined ? 10 : nonNegativeInteger('patience', options.patience, LIMITS.epochs),
    seed: options.seed === undefined ? 42 : nonNegativeInteger('seed', options.seed, LIMITS.seed),
  };
}

type ResolvedTrainOptions = ReturnType<typeof resolveOptions>;

/** What one training run works on: the data, the model and its optimiser, and how it steps. */
interface Fit {
  data: TrainData;
  p: Prepared;
  frame: boolean;
  o: ResolvedTrainOptions;
  split: { train: number[]; val: number[] };
  /** Per-class loss weights. */
  weights: Float32Array;
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  variables: tf.Variable[];
  /** The head's hand-written step, or undefined to train through autodiff. */
  fast: FastStep | undefined;
  pace: Pace;
  rng: () => number;
}

/** One pass over the training clips in a fresh order: the mean batch loss and the running accuracy. */
async function trainEpoch(f: Fit): Promise<{ loss: number; acc: number }> {
  const order = shuffle([...f.split.train], f.rng);
  let lossSum = 0;
  let batches = 0;
  let correct = 0;
  let seen = 0;
  for (let i = 0; i < order.length; i += f.o.batchSize) {
    await f.pace.tick();
    const batch = makeBatch(f.data, f.p, f.frame, order.slice(i, i + f.o.batchSize), f.weights, f.o.head.dropout, f.rng);
    let result: { loss: tf.Scalar; hits: tf.Scalar; counted: tf.Scalar };
    try {
      result = f.fast ? f.fast.run(batch, f.optimizer, f.variables) : slowStep(f.model, batch, f.optimizer, f.variables);
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

/** Early stopping: keeps a copy of the best weights by the monitored loss, and says when to stop. */
class BestWeights {
  best: { epoch: number; monitor: number; weights: tf.Tensor[] } | undefined;
  private wait = 0;

  constructor(private readonly patience: number) {}

  /** Records an epoch; true when it is time to stop. */
  update(model: tf.LayersModel, epoch: number, monitor: number): boolean {
    if (!this.best || monitor < this.best.monitor - 1e-6) {
      if (this.best) tf.dispose(this.best.weights);
      this.best = { epoch, monitor, weights: model.getWeights().map((w) => tf.clone(w)) };
      this.wait = 0;
      return false;
    }
    return ++this.wait > this.patience;
  }

  dispose(): void {
    if (this.best) tf.dispose(this.best.weights);
    this.best = undefined;
  }
}

/** The epochs, with early stopping; leaves the best weights in the model and returns the metrics. */
async function fitEpochs(f: Fit, onEpoch: TrainHeadOptions['onEpoch']): Promise<TrainMetrics> {
  const started = performance.now();
  const history: EpochProgress[] = [];
  const keeper = new BestWeights(f.o.patience);
  try {
    for (let epoch = 1; epoch <= f.o.epochs; epoch++) {
      const epochStart = performance.now();
      const train = await trainEpoch(f);
      const valEval = f.split.val.length ? await evaluate(f.model, f.data, f.p, f.frame, f.split.val, f.weights, 64, f.pace) : undefined;
      const progress: EpochProgress = { epoch, loss: train.loss, acc: train.acc, valLoss: valEval?.loss ?? null, valAcc: valEval?.acc ?? null };
      history.push(progress);
      const now = performance.now();
      onEpoch?.({ ...progress, epochs: f.o.epochs, seconds: (now - epochStart) / 1000, etaSeconds: (((now - started) / epoch) * (f.o.epochs - epoch)) / 1000 });
      if (keeper.update(f.model, epoch, valEval ? valEval.loss : progress.loss)) {
        debug('trainHead: early stop at epoch %d (best %d)', epoch, keeper.best?.epoch);
        break;
      }
    }
    const best = keeper.best;
    if (best) f.model.setWeights(best.weights);
    const bestEntry = history[(best?.epoch ?? history.length) - 1];
    const finalTrain = await evaluate(f.model, f.data, f.p, f.frame, f.split.train, f.weights, 64, f.pace);
    return {
      epochs: history.length,
      bestEpoch: best?.epoch ?? history.length,
      loss: finalTrain.loss,
      acc: finalTrain.acc,
      valLoss: bestEntry?.valLoss ?? null,
      valAcc: bestEntry?.valAcc ?? null,
      trainClips: f.split.train.length,
      valClips: f.split.val.length,
      seed: f.o.seed,
      backend: activeBackendName(),
      history,
    };
  } finally {
    keeper.dispose();
  }
}

/** What framewise.json records of a trained head. */
function modelInfo(p: Prepared, o: ResolvedTrainOptions, options: TrainHeadOptions, metrics: TrainMetrics): ModelInfo {
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

/**
 * Trains a head on frame embeddings and returns the classifier with the best weights (lowest
 * validation loss; lowest training loss without a validation split).
 */
export async function trainHead(data: TrainData, options: TrainHeadOptions = {}): Promise<HeadClassifier> {
  const signal = checkSignal('signal', options.signal);
  const o = resolveOptions(options);
  const frame = o.head.mode === 'frame';
  const p = validate(data, options, frame);
  const rng = seedrandom(String(o.seed));
  const split = stratifiedGroupSplit(clipLabels(p, frame), p.groups, o.validationSplit, rng);
  if (split.train.length === 0) throw new UsageError('trainHead: no clips left for training after the validation split');
  const weights = classWeights(p, split.train, frame, options.classWeight);
  debug('trainHead: %s/%s, %d train + %d val clips, T=%d D=%d, classes %s', o.head.type, o.head.mode, split.train.length, split.val.length, p.t, p.d, p.classes.join(','));

  const run = async (): Promise<{ model: tf.LayersModel; metrics: TrainMetrics }> => {
    const runRng = seedrandom(`${o.seed}/train`);
    const model = buildHead(o.head, { dim: p.d, classes: p.classes.length }, o.seed);
    const optimizer = tf.train.adam(o.learningRate);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    // The recurrent heads train through a hand-written step on the same variables; a head
    // whose registry entry has no fast step (`mean`: no recurrence) through autodiff.
    const fast = fastStep(model, o.head, weightedLoss);
    debug('trainHead: %s step', fast ? 'fast' : 'autodiff');
    try {
      const fit: Fit = { data, p, frame, o, split, weights, model, optimizer, variables, fast, pace: new Pace(signal), rng: runRng };
      return { model, metrics: await fitEpochs(fit, options.onEpoch) };
    } catch (error) {
      model.dispose();
      throw error;
    } finally {
      optimizer.dispose();
    }
  };

  const { model, metrics } = await withHeadBackend(run, options.onWarning);
  return new HeadClassifier(model, modelInfo(p, o, options, metrics));
}
