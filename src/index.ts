/**
 * framewise: the public API, exported by name. A small surface on purpose: everything here
 * is a promise to users; everything else may change between releases.
 */

// Errors, each with a stable `code`.
export {
  FramewiseError,
  IngestError,
  FfmpegError,
  ShapeError,
  UsageError,
  ModelError,
  QueueError,
} from './errors.js';
export type { ErrorCode, IngestErrorCode, RecordErrorCode } from './errors.js';

// Tasks: embed, classify, train, evaluate.
export { createPipeline, loadClassifier, train, evaluate, discoverInputs } from './tasks/index.js';
export type {
  Pipeline,
  PipelineOptions,
  EmbedOptions,
  EmbedResult,
  ClipEmbedding,
  Classifier,
  ClassifierOptions,
  ClassifyOptions,
  ClassifyResult,
  ClipPrediction,
  FramePrediction,
  LabelScore,
  TrainOptions,
  TrainResult,
  EvalOptions,
  EvalResult,
  InputEntry,
  Inputs,
} from './tasks/index.js';

// Embedding: results, progress, the store, backbone specs.
export { isErrorRecord } from './embedding/runner.js';
export type { ErrorRecord, EmbedRunner, EmbedItem, RunOptions, VideoFrames } from './embedding/runner.js';
export type { ProgressEvent, ProgressCallback, QueueProgress } from './embedding/progress.js';
export { EmbeddingCache } from './embedding/cache.js';
export type { EmbeddingStore, CachedVideo, CachedClip } from './embedding/cache.js';
export { BACKBONES } from './embedding/backbone-spec.js';
export type {
  BackboneSpec,
  CustomBackbone,
  OnnxBackbone,
  Normalization,
  BackboneInfo,
  RegistryEntry,
} from './embedding/backbone-spec.js';
export type { FrameEmbedder } from './embedding/frame-embedder.js';

// Engines: a backbone as a FrameEmbedder, for frames you decode yourself.
export { createFrameEmbedder } from './engines/index.js';
export type { FrameEmbedderOptions, BackendRequest, EngineRequest, EngineName } from './engines/index.js';

// Ingest: probe, sampling plans, extraction.
// Across machines: `framewise worker` as a library call; coordinators take `remote` in their options.
export { startWorker } from './runners/index.js';
export type {
  RemoteSettings,
  WorkerHandle,
  WorkerOptions,
  WorkerStats,
  ConfineOptions,
  QueueStatus,
  QueueStatusOptions,
  JobState,
  WorkerPresence,
  CoordinatorPresence,
  StalledWait,
} from './runners/index.js';

export { probe, planClips, parseSampling, extractClips } from './ingest/index.js';
export type {
  ProbeOptions,
  ExtractOptions,
  ResolvedExtractOptions,
  ProbeResult,
  ClipPlan,
  Sampling,
  SamplingSpan,
  SamplerName,
  Fit,
  FrameClip,
  Segment,
  VideoEntry,
  DecoderName,
  DecoderRequest,
  SeekMode,
  VideoDecoder,
} from './ingest/index.js';
export type { ExtractStrategy } from './ingest/extract-plan.js';

// Model: Keras modelling on tfjs.
// Whole-model export: tfjs (`exportEndToEnd`), or one ONNX graph for use outside framewise (`exportOnnx`).
export {
  TimeDistributed,
  buildHead,
  trainHead,
  saveModel,
  loadModel,
  exportEndToEnd,
  exportOnnx,
} from './model/index.js';
export type {
  HeadType,
  HeadMode,
  HeadOptions,
  HeadConfig,
  TrainData,
  TrainHeadOptions,
  TrainCheckpoint,
  MemberState,
  EarlyState,
  ScheduleState,
  Monitor,
  LrSchedule,
  StopInfo,
  HeadClassifier,
  ModelInfo,
  TrainMetrics,
  EpochProgress,
  SaveModelOptions,
  LoadModelOptions,
  ExportOptions,
  ExportOnnxOptions,
} from './model/index.js';
export type { TimeDistributedArgs } from './tfjs/time-distributed.js';
export type { BackendInfo, BackendName } from './tfjs/backend.js';

// Evaluation: metrics, reports, splits, comparisons.
export {
  clipMetrics,
  frameMetrics,
  writeReport,
  splitDataset,
  writeSplit,
  compareReports,
  formatComparison,
} from './evaluation/index.js';
export type {
  ClipMetrics,
  FrameMetrics,
  ClassScores,
  ConfusionMatrix,
  CalibrationBin,
  ScoredSample,
  FrameSequence,
  MetricsReport,
  PredictionRecord,
  WrittenReport,
  LabelledVideo,
  SplitOptions,
  DatasetSplit,
  WriteSplitOptions,
  WrittenSplit,
  Comparison,
  CompareOptions,
  ScoredSegment,
  CoveragePoint,
} from './evaluation/index.js';
export type { ClipMetricsOptions, FrameMetricsOptions } from './evaluation/metrics.js';
export type { WriteReportOptions, ReportFailure } from './evaluation/report.js';
export type { ClassSplitCounts } from './evaluation/split.js';
export type { BootstrapResult } from './evaluation/compare.js';

// Output: the records the CLI writes, for library users who write their own files.
export { embedRecord, npyFile, npyIndexRecord, classifyRecord, classifyCsvRow } from './output/index.js';
