/**
 * `framewise/model`: Keras modelling on tfjs (heads, training, model files, export). A package
 * entry (package.json `exports`): everything here is public API. Importing it loads tfjs.
 *
 * Its declarations name no tfjs type (types.ts says why): the two values that are tfjs objects
 * themselves, `TimeDistributed` and the model `buildHead` returns, are declared here with
 * framewise's structural types.
 *
 * @module framewise/model
 */
import { TimeDistributed as TimeDistributedLayer } from '../tfjs/time-distributed.js';
import { buildHead as buildTfHead } from './heads.js';
import type { HeadConfig, LayerLike, LayersModelLike, TimeDistributedArgs } from './types.js';

/** A `TimeDistributed` layer: a tfjs `Layer` (cast it to `tf.layers.Layer` to use it in a tfjs model). */
export interface TimeDistributed extends LayerLike {
  /** The layer or model applied to every time step. */
  readonly layer: LayerLike;
}

/**
 * Our own `TimeDistributed` (registered as `FramewiseTimeDistributed`): reshapes [B, T, ...] to
 * [B*T, ...], calls the inner layer or model once and reshapes back, so it equals
 * `tf.layers.timeDistributed` without a loop over time, and passes the [B, T] mask on. A saved
 * model that holds it reloads once framewise/model is imported.
 */
export const TimeDistributed: TimeDistributedConstructor =
  // The same class: tfjs's types for its argument are narrower than the structural ones.
  TimeDistributedLayer as unknown as TimeDistributedConstructor;

/** `TimeDistributed` as a class. */
export interface TimeDistributedConstructor {
  new (args: TimeDistributedArgs): TimeDistributed;
  /** The class name it serialises under. */
  readonly className: string;
}

/**
 * Builds an untrained head: input [B, T, D] (any T) -> softmax [B, C] or [B, T, C]. `seed`
 * fixes the initial weights. The result is a tfjs `LayersModel` (cast it to `tf.LayersModel`
 * for tfjs's API).
 */
export function buildHead(
  config: HeadConfig,
  dims: { dim: number; classes: number },
  seed = 0,
): LayersModelLike {
  return buildTfHead(config, dims, seed);
}

export type {
  HeadType,
  HeadMode,
  HeadOptions,
  HeadConfig,
  HeadClassifier,
  ModelInfo,
  TrainMetrics,
  EpochProgress,
  LayerLike,
  LayersModelLike,
  TimeDistributedArgs,
} from './types.js';
export {
  trainHead,
  type TrainData,
  type TrainHeadOptions,
  type TrainCheckpoint,
  type MemberState,
  type EarlyState,
  type ScheduleState,
} from './train.js';
export type { Monitor, LrSchedule, StopInfo } from './train-options.js';
export {
  saveModel,
  loadModel,
  exportEndToEnd,
  type SaveModelOptions,
  type LoadModelOptions,
  type ExportOptions,
} from './model-files.js';
export { exportOnnx, type ExportOnnxOptions } from './export-onnx.js';
export type { BackendInfo, BackendName } from '../tfjs/backend.js';
