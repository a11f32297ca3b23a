/**
 * A trained head and what it was trained for: `predict` maps frame embeddings [B, T, D] (and
 * which frames are real) to class probabilities. Made by `trainHead` and `loadModel`.
 */
import { tf } from '../tfjs/tf.js';
import { ModelError, ShapeError } from '../errors.js';
import { checkSignal, invalid } from '../validate.js';
import type { BackendInfo } from '../tfjs/backend.js';
import type { BackboneSpec, Normalization } from '../embedding/backbone-spec.js';
import { embeddingsTensor, type HeadConfig, type HeadMode } from './heads.js';
import type { StopInfo } from './train-options.js';

/** Figures from a training run. */
export interface TrainMetrics {
  /** Epochs run, and the (1-based) epoch whose weights were kept. */
  epochs: number;
  bestEpoch: number;
  loss: number;
  acc: number;
  valLoss: number | null;
  valAcc: number | null;
  /** Clips in the training and validation splits. */
  trainClips: number;
  valClips: number;
  seed: number;
  /** Backend the head trained on. */
  backend: string;
  /** Why training stopped (absent for an ensemble: see each member's). */
  stop?: StopInfo;
  /** One entry per epoch: loss, acc, valLoss, valAcc, lr (empty for an ensemble: see each member's). */
  history: EpochProgress[];
  /** An ensemble's members, in seed order; the figures above are then those of the averaged probabilities. */
  members?: TrainMetrics[];
}

/**
 * Reported after every epoch. `loss` and `acc` are running figures over the epoch's training
 * batches (training mode, dropout on); `valLoss` and `valAcc` are measured in inference mode.
 * Accuracies are per clip (clip mode) or per frame (frame mode).
 */
export interface EpochProgress {
  epoch: number;
  loss: number;
  acc: number;
  valLoss: number | null;
  valAcc: number | null;
  /** The learning rate of this epoch. */
  lr?: number;
  /** In an ensemble: the (1-based) member this epoch trained. */
  member?: number;
  /**
   * For progress and an ETA, in what `onEpoch` receives (absent from `TrainMetrics.history`,
   * which stays the same from run to run): the most epochs this run goes to (early stopping
   * may end it sooner), the wall seconds this epoch took (training and validation), and the
   * estimated seconds left to the last epoch at the mean pace so far.
   */
  epochs?: number;
  seconds?: number;
  etaSeconds?: number;
}

/** The contents of framewise.json. */
export interface ModelInfo {
  format: 'framewise-model';
  formatVersion: 1;
  /** framewise version that wrote it. */
  version: string;
  labels: string[];
  mode: HeadMode;
  head: HeadConfig;
  /** Embedding size D the head takes. */
  dim: number;
  /** Frames per clip at training time. */
  frames: number;
  /** Backbone input size S (frames are S x S). */
  size: number;
  /** The sampling used to make the training clips, as given by the caller. */
  sampling: unknown;
  /** The backbone as it was asked for (registry name or custom spec), and its stable id. */
  backbone: BackboneSpec;
  backboneId: string;
  backboneName: string;
  normalize: Normalization;
  metrics: TrainMetrics | null;
  backend: BackendInfo | null;
  createdAt: string;
  /** An ensemble: its size and its members' seeds (members 2..N live in `member-K/`). Absent for one head. */
  ensemble?: { size: number; seeds: number[] };
  [key: string]: unknown;
}

export class HeadClassifier {
  /** The head (an ensemble's first member). */
  readonly model: tf.LayersModel;
  /** Every head: one, or an ensemble's members in seed order, whose probabilities `predict` averages. */
  readonly members: readonly tf.LayersModel[];
  info: ModelInfo;
  private disposed = false;

  constructor(model: tf.LayersModel | readonly tf.LayersModel[], info: ModelInfo) {
    this.members = Array.isArray(model) ? [...model] : [model as tf.LayersModel];
    if (this.members.length === 0) throw new ModelError('a classifier needs at least one head');
    this.model = this.members[0];
    this.info = info;
  }

  get labels(): string[] {
    return this.info.labels;
  }

  get mode(): HeadMode {
    return this.info.mode;
  }

  /**
   * Class probabilities: [B, C] in clip mode, [B, T, C] in frame mode, row-major. `mask`
   * ([B*T], true/1 for a real frame) marks padded frames, which the head skips.
   */
  async predict(
    embeddings: Float32Array,
    shape: [number, number, number],
    mask?: ArrayLike<boolean | number>,
    options: { signal?: AbortSignal } = {},
  ): Promise<Float32Array> {
    checkSignal('options.signal', options.signal);
    if (this.disposed) throw new ModelError('this classifier has been disposed');
    checkEmbeddings('predict', embeddings, shape, this.info.dim, mask);
    const y = tf.tidy(() => averagedPredict(this.members, embeddingsTensor(embeddings, shape, mask)));
    try {
      return (await y.data()) as Float32Array;
    } finally {
      y.dispose();
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.members) m.dispose();
  }
}

/** The class probabilities of one model, or the mean of an ensemble's (the one place an ensemble is averaged). */
export function averagedPredict(models: tf.LayersModel | readonly tf.LayersModel[], x: tf.Tensor): tf.Tensor {
  const list = Array.isArray(models) ? models : [models as tf.LayersModel];
  return tf.tidy(() => {
    const each = list.map((m) => m.predict(x) as tf.Tensor); // [B, C] or [B, T, C] each
    return each.length === 1 ? each[0] : tf.div(tf.addN(each), each.length);
  });
}

/** Validates embeddings against their shape and the expected embedding size. */
export function checkEmbeddings(
  stage: string,
  embeddings: unknown,
  shape: unknown,
  dim: number | undefined,
  mask?: ArrayLike<boolean | number>,
): void {
  if (!(embeddings instanceof Float32Array)) throw invalid('embeddings', 'a Float32Array', embeddings);
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw invalid('shape', 'an array [B, T, D] of non-negative integers', shape);
  }
  const [b, t, d] = shape as number[];
  if (dim !== undefined && d !== dim) {
    throw new ShapeError(
      `${stage}: mismatched embedding dimensions (the head takes D = ${dim})`,
      [null, null, dim],
      shape as number[],
    );
  }
  if (embeddings.length !== b * t * d)
    throw new ShapeError(`${stage}: embeddings length`, [b * t * d], [embeddings.length]);
  if (mask !== undefined && mask.length !== b * t)
    throw new ShapeError(`${stage}: mask length ([B*T])`, [b * t], [mask.length]);
}
