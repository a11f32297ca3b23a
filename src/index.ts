/** framewise: the public API, exported by name. */
export { FramewiseError, IngestError, FfmpegError, ShapeError, UsageError, ModelError } from './errors.js';
export type { ErrorCode, IngestErrorCode } from './errors.js';

// Pipeline, classification and training (issue 4).
export { createPipeline, isErrorRecord, meanOverMask } from './tasks/embed.js';
export type { Pipeline, EmbedOptions, EmbedResult, ClipEmbedding, ErrorRecord } from './tasks/embed.js';
export type { PipelineOptions, BackboneSpec } from './tasks/options.js';
export { loadClassifier, topK, aggregateRows } from './tasks/classify.js';
export type { Classifier as VideoClassifier, ClassifierOptions, ClassifyOptions, ClassifyResult, ClipPrediction, FramePrediction, LabelScore } from './tasks/classify.js';
export { train } from './tasks/train.js';
export type { TrainOptions, TrainResult } from './tasks/train.js';
export type { ProgressEvent, ProgressCallback } from './embedding/progress.js';
export { EmbeddingCache, defaultCacheDir as defaultEmbeddingCacheDir, fileIdentity } from './embedding/cache.js';
export { encodeNpy, decodeNpy } from './output/npy.js';
export type { InputEntry } from './engines/index.js';

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
export { selectBackend } from './engines/tfjs/backend.js';
export type { BackendRequest, BackendName, BackendInfo } from './engines/tfjs/backend.js';
export { BACKBONES, DEFAULT_BACKBONE, loadBackbone, normalizationParams, defaultCacheDir as defaultBackboneCacheDir } from './engines/tfjs/registry.js';
export type { CustomBackbone, Normalization, BackboneInfo, LoadedBackbone, LoadBackboneOptions } from './engines/tfjs/registry.js';
export { TimeDistributed } from './model/time-distributed.js';
export { createEmbedder } from './engines/tfjs/embedder.js';
export type { FrameEmbedder, EmbedderOptions } from './engines/tfjs/embedder.js';
export { buildHead, resolveHeadConfig } from './model/heads.js';
export type { HeadType, HeadMode, HeadOptions, HeadConfig } from './model/heads.js';
export { trainHead } from './model/train.js';
export type { TrainData, TrainOptions as TrainHeadOptions } from './model/train.js';
export { Classifier as HeadClassifier } from './model/classifier.js';
export type { ModelInfo, TrainMetrics, EpochProgress } from './model/classifier.js';
export { saveModel, loadModel, readModelInfo, checkCompatible, exportEndToEnd } from './model/model-files.js';
export type { SaveModelOptions, LoadModelOptions, ExportOptions } from './model/model-files.js';

// Evaluation: metrics, reports, splits, comparisons (issue 5).
export { evaluate, labelAt as segmentLabelAt, modelId } from './tasks/evaluate.js';
export type { EvalOptions, EvalResult } from './tasks/evaluate.js';
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
} from './evaluation/metrics.js';
export type { ClipMetrics, FrameMetrics, ClassScores, ConfusionMatrix, CalibrationBin, ScoredSample, FrameSequence, Segment as LabelSegment, ClipMetricsOptions, FrameMetricsOptions } from './evaluation/metrics.js';
export { METRICS_SCHEMA, writeReport, reportMarkdown, confusionSvg, confusionPng, datasetFingerprint, worstConfusedPairs } from './evaluation/report.js';
export type { MetricsReport, PredictionRecord, ReportFailure, WrittenReport } from './evaluation/report.js';
export { splitDataset, writeSplit } from './evaluation/split.js';
export type { LabelledVideo, SplitOptions, DatasetSplit, WriteSplitOptions, WrittenSplit } from './evaluation/split.js';
export { compareReports, formatComparison, pairedBootstrap, loadReport } from './evaluation/compare.js';
export type { Comparison, CompareOptions, BootstrapOptions, BootstrapResult, VideoScore } from './evaluation/compare.js';
