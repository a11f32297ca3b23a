/**
 * `framewise/model`: Keras modelling on tfjs (heads, training, model files, export). A package
 * entry (package.json `exports`): everything here is public API. Importing it loads tfjs.
 */
export { TimeDistributed, type TimeDistributedArgs } from '../tfjs/time-distributed.js';
export { buildHead, type HeadType, type HeadMode, type HeadOptions, type HeadConfig } from './heads.js';
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
export type { HeadClassifier, ModelInfo, TrainMetrics, EpochProgress } from './classifier.js';
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
