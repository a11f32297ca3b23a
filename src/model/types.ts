/**
 * The model's public types, in a module that names no tfjs type: the published declarations
 * of `framewise` and `framewise/model` reach only modules like this one, so a consumer compiles
 * them with `skipLibCheck: false` (tfjs's own declarations do not, without the DOM library).
 * A tfjs object that framewise hands out or takes is typed here by the few members framewise
 * promises (`LayersModelLike`, `LayerLike`); a tfjs object fits them, and a caller who wants
 * tfjs's whole API casts to tfjs's type.
 */
import type { BackboneSpec, Normalization } from '../embedding/backbone-spec.js';
import type { BackendInfo } from '../tfjs/backend.js';
import type { StopInfo } from './train-options.js';

/**
 * The temporal heads, by name: the keys of `HEADS` (src/model/heads/registry.ts, which checks
 * that the two agree). Written out because the registry's entries name tfjs types.
 */
export type HeadType = 'lstm' | 'gru' | 'bilstm' | 'mean';

export type { HeadMode } from './model-info.js';
import type { HeadMode } from './model-info.js';

export interface HeadOptions {
  /** @default 'lstm' */
  type?: HeadType;
  /** `clip`: one label per clip; `frame`: one label per frame. @default 'clip' */
  mode?: HeadMode;
  /** Recurrent units (per direction for `bilstm`); unused by `mean`. @default 256 */
  units?: number;
  /** Dropout rate on the frame embeddings while training. @default 0.2 */
  dropout?: number;
}

/** A head's full configuration, as recorded in framewise.json. */
export interface HeadConfig {
  type: HeadType;
  mode: HeadMode;
  units: number;
  dropout: number;
}

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

/** A tfjs layer (`tf.layers.Layer` of `@tensorflow/tfjs`), by the members framewise relies on. */
export interface LayerLike {
  readonly name: string;
  getClassName(): string;
}

/** A tfjs `LayersModel` (`@tensorflow/tfjs`), by the members framewise relies on. */
export interface LayersModelLike extends LayerLike {
  /** Runs the model on a tfjs tensor (or tensors); returns tfjs tensors. */
  predict(x: unknown, args?: unknown): unknown;
  /** Frees the model's weights. */
  dispose(): unknown;
}

/** `TimeDistributed`'s constructor arguments. */
export interface TimeDistributedArgs {
  /** The layer or LayersModel applied to every time step; its weights are shared across steps. */
  layer: LayerLike;
  name?: string;
  trainable?: boolean;
  inputShape?: Array<number | null>;
  batchInputShape?: Array<number | null>;
}

/**
 * A trained head and what it was trained for: `predict` maps frame embeddings [B, T, D] (and
 * which frames are real) to class probabilities. Made by `trainHead` and `loadModel`.
 */
export interface HeadClassifier {
  /** The head (an ensemble's first member): a tfjs `LayersModel`. */
  readonly model: LayersModelLike;
  /** Every head: one, or an ensemble's members in seed order, whose probabilities `predict` averages. */
  readonly members: readonly LayersModelLike[];
  info: ModelInfo;
  readonly labels: string[];
  readonly mode: HeadMode;
  /**
   * Class probabilities: [B, C] in clip mode, [B, T, C] in frame mode, row-major. `mask`
   * ([B*T], true/1 for a real frame) marks padded frames, which the head skips.
   */
  predict(
    embeddings: Float32Array,
    shape: [number, number, number],
    mask?: ArrayLike<boolean | number>,
    options?: { signal?: AbortSignal },
  ): Promise<Float32Array>;
  dispose(): Promise<void>;
}
