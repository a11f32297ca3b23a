/** The task API that the CLI and the package entry use: embed, classify, train, evaluate. */
export {
  createPipeline,
  type Pipeline,
  type EmbedOptions,
  type EmbedResult,
  type ClipEmbedding,
} from './embed.js';
export {
  loadClassifier,
  resolveClassifierOptions,
  type Classifier,
  type ClassifierOptions,
  type ClassifyOptions,
  type ClassifyResult,
  type ClipPrediction,
  type FramePrediction,
  type LabelScore,
} from './classify.js';
export { train, type TrainOptions, type TrainResult } from './train.js';
export { evaluate, modelId, type EvalOptions, type EvalResult } from './evaluate.js';
export { discoverInputs, type InputEntry, type Inputs } from './inputs.js';
export { resolveOptions, type PipelineOptions } from './options.js';
// A worker for runs across machines (the queue client loads when it starts).
export {
  startWorker,
  queueStatus,
  startCoordinatorMetrics,
  type WorkerHandle,
  type WorkerOptions,
  type WorkerStats,
  type QueueStatus,
  type CoordinatorMetricsServer,
} from '../runners/index.js';
// Whether a file is an ONNX model framewise exported (`export --force` replaces only those).
export { isFramewiseOnnx } from '../model/export-onnx.js';
// A model folder's description, checked (a folder still in training is refused with how to go on).
export { readModelInfo } from '../model/model-info.js';
// Not in the package entry (it holds at most 40 names): what `framewise info` and `split` use.
export { datasetInfo, type DatasetInfo, type DatasetInfoOptions } from './info.js';
export { majorityLabel } from '../evaluation/split.js';
