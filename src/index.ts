/**
 * framewise: the public API, exported by name. A small surface on purpose: everything here
 * is a promise to users; everything else may change between releases. The root holds the
 * tasks, the records, the errors and `FrameEmbedder`; the building blocks are under
 * `framewise/ingest` (src/ingest/index.ts), `framewise/model` (src/model/index.ts) and
 * `framewise/evaluation` (src/evaluation/index.ts).
 *
 * @module framewise
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

// Tasks: embed, classify, train, evaluate. From their own modules, not tasks/index.ts, whose
// declarations reach the registries' (and so tfjs's types): see test/public-types.test.ts.
export {
  createPipeline,
  type Pipeline,
  type EmbedOptions,
  type EmbedResult,
  type ClipEmbedding,
} from './tasks/embed.js';
export {
  loadClassifier,
  type Classifier,
  type ClassifierOptions,
  type ClassifyOptions,
  type ClassifyResult,
  type ClipPrediction,
  type FramePrediction,
  type LabelScore,
} from './tasks/classify.js';
export { train, type TrainOptions, type TrainResult } from './tasks/train.js';
export { evaluate, type EvalOptions, type EvalResult } from './tasks/evaluate.js';
export { discoverInputs, type InputEntry, type Inputs } from './tasks/inputs.js';
export type { PipelineOptions } from './embedding/options.js';

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

// The types the tasks' options and results are made of.
export type {
  Sampling,
  SamplingSpan,
  SamplerName,
  Fit,
  VideoEntry,
  DecoderName,
  DecoderRequest,
  SeekMode,
} from './ingest/index.js';
export type {
  HeadType,
  HeadMode,
  HeadOptions,
  HeadConfig,
  Monitor,
  LrSchedule,
  StopInfo,
  ModelInfo,
  TrainMetrics,
  EpochProgress,
  BackendInfo,
  BackendName,
} from './model/index.js';
export type {
  ClipMetrics,
  FrameMetrics,
  ClassScores,
  ConfusionMatrix,
  CalibrationBin,
  CoveragePoint,
  MetricsReport,
  PredictionRecord,
  WrittenReport,
  ReportFailure,
  ScoredSegment,
} from './evaluation/index.js';

// The building blocks live under their subpaths since 0.2: `framewise/ingest`, `framewise/model`
// and `framewise/evaluation`. Their names stay here until 0.3, deprecated.
export {
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  probe,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  planClips,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  parseSampling,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  extractClips,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type ProbeOptions,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type ExtractOptions,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type ResolvedExtractOptions,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type ProbeResult,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type ClipPlan,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type FrameClip,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type Segment,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type VideoDecoder,
  /** @deprecated Import it from `framewise/ingest`; the root export goes in 0.3. */
  type ExtractStrategy,
} from './ingest/index.js';
export {
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  TimeDistributed,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  buildHead,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  trainHead,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  saveModel,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  loadModel,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  exportEndToEnd,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  exportOnnx,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type TimeDistributedArgs,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type TrainData,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type TrainHeadOptions,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type TrainCheckpoint,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type MemberState,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type EarlyState,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type ScheduleState,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type HeadClassifier,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type SaveModelOptions,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type LoadModelOptions,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type ExportOptions,
  /** @deprecated Import it from `framewise/model`; the root export goes in 0.3. */
  type ExportOnnxOptions,
} from './model/index.js';
export {
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  clipMetrics,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  frameMetrics,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  writeReport,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  splitDataset,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  writeSplit,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  compareReports,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  formatComparison,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type ClipMetricsOptions,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type FrameMetricsOptions,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type WriteReportOptions,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type ScoredSample,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type FrameSequence,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type LabelledVideo,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type SplitOptions,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type DatasetSplit,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type WriteSplitOptions,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type WrittenSplit,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type ClassSplitCounts,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type Comparison,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type CompareOptions,
  /** @deprecated Import it from `framewise/evaluation`; the root export goes in 0.3. */
  type BootstrapResult,
} from './evaluation/index.js';

// Output: the records the CLI writes, for library users who write their own files.
export { embedRecord, npyFile, npyIndexRecord, classifyRecord, classifyCsvRow } from './output/index.js';
