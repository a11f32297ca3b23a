/** framewise: the public API, exported by name. */
export { FramewiseError, IngestError, FfmpegError, ShapeError, UsageError, ModelError } from './errors.js';
export type { ErrorCode, IngestErrorCode } from './errors.js';

// Pipeline, classification and training (issue 4).
export { createPipeline, isErrorRecord, meanOverMask } from './pipeline/pipeline.js';
export type { Pipeline, EmbedOptions, EmbedResult, ClipEmbedding, ErrorRecord } from './pipeline/pipeline.js';
export type { PipelineOptions, BackboneSpec } from './pipeline/options.js';
export { loadClassifier, topK, aggregateRows } from './pipeline/classify.js';
export type { Classifier as VideoClassifier, ClassifierOptions, ClassifyOptions, ClassifyResult, ClipPrediction, FramePrediction, LabelScore } from './pipeline/classify.js';
export { train } from './pipeline/train.js';
export type { TrainOptions, TrainResult } from './pipeline/train.js';
export type { ProgressEvent, ProgressCallback } from './pipeline/progress.js';
export { EmbeddingCache, defaultCacheDir as defaultEmbeddingCacheDir, fileIdentity } from './pipeline/cache.js';
export { encodeNpy, decodeNpy } from './pipeline/npy.js';
export type { InputEntry } from './pipeline/stages.js';

// Ingest (issue 2).
export { probe } from './ingest/probe.js';
export type { ProbeOptions } from './ingest/probe.js';
export { planClips, parseSampling, formatSampling, validateSampling } from './ingest/sampling.js';
export { extractClips, resizeFrame } from './ingest/extract.js';
export type { ExtractOptions } from './ingest/extract.js';
export { discover, VIDEO_EXTENSIONS } from './ingest/discover.js';
export type { DiscoverOptions } from './ingest/discover.js';
export { resolveBinaries, checkBinaries } from './ingest/ffmpeg.js';
export type { FfmpegBinaries } from './ingest/ffmpeg.js';
export type { ProbeResult, ClipPlan, Sampling, FrameClip, Segment, VideoEntry } from './ingest/types.js';

// Model: backend, backbones, TimeDistributed, heads, training, model files (issue 3).
export { selectBackend } from './model/backend.js';
export type { BackendRequest, BackendName, BackendInfo } from './model/backend.js';
export { BACKBONES, DEFAULT_BACKBONE, loadBackbone, normalizationParams, defaultCacheDir as defaultBackboneCacheDir } from './model/backbones.js';
export type { CustomBackbone, Normalization, BackboneInfo, LoadedBackbone, LoadBackboneOptions } from './model/backbones.js';
export { TimeDistributed } from './model/time-distributed.js';
export { createEmbedder } from './model/embedder.js';
export type { FrameEmbedder, EmbedderOptions } from './model/embedder.js';
export { buildHead, resolveHeadConfig } from './model/heads.js';
export type { HeadType, HeadMode, HeadOptions, HeadConfig } from './model/heads.js';
export { trainHead } from './model/train.js';
export type { TrainData, TrainOptions as TrainHeadOptions } from './model/train.js';
export { Classifier as HeadClassifier } from './model/classifier.js';
export type { ModelInfo, TrainMetrics, EpochProgress } from './model/classifier.js';
export { saveModel, loadModel, readModelInfo, checkCompatible, exportEndToEnd } from './model/model-files.js';
export type { SaveModelOptions, LoadModelOptions, ExportOptions } from './model/model-files.js';

// Evaluation: metrics, reports, splits, comparisons (issue 5).
export { evaluate, labelAt as segmentLabelAt, modelId } from './pipeline/eval.js';
export type { EvalOptions, EvalResult } from './pipeline/eval.js';
export {
  clipMetrics,
  frameMetrics,
  confusionMatrix,
  classScores,
  macroF1,
  weightedF1,
  meanClassAccuracy,
  topKAccuracy,
  logLoss,
  calibration,
  aggregateClipScores,
  segmentsOf,
  levenshtein,
  editScore,
  segmentMatches,
  f1FromCounts,
} from './pipeline/metrics.js';
export type { ClipMetrics, FrameMetrics, ClassScores, ConfusionMatrix, CalibrationBin, ScoredSample, FrameSequence, Segment as LabelSegment, ClipMetricsOptions, FrameMetricsOptions } from './pipeline/metrics.js';
export { METRICS_SCHEMA, writeReport, reportMarkdown, confusionSvg, confusionPng, datasetFingerprint, worstConfusedPairs } from './pipeline/report.js';
export type { MetricsReport, PredictionRecord, ReportFailure, WrittenReport } from './pipeline/report.js';
export { splitDataset, writeSplit } from './pipeline/split.js';
export type { LabelledVideo, SplitOptions, DatasetSplit, WriteSplitOptions, WrittenSplit } from './pipeline/split.js';
export { compareReports, formatComparison, pairedBootstrap, loadReport } from './pipeline/compare.js';
export type { Comparison, CompareOptions, BootstrapOptions, BootstrapResult, VideoScore } from './pipeline/compare.js';
