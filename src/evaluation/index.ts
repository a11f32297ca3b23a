/**
 * `framewise/evaluation`: metrics, reports, splits and comparisons. A package entry
 * (package.json `exports`): everything here is public API. No tfjs, no ffmpeg.
 *
 * @module framewise/evaluation
 */
export {
  clipMetrics,
  frameMetrics,
  type ClipMetrics,
  type FrameMetrics,
  type ClipMetricsOptions,
  type FrameMetricsOptions,
  type ClassScores,
  type ConfusionMatrix,
  type CalibrationBin,
  type ScoredSample,
  type FrameSequence,
  type CoveragePoint,
} from './metrics.js';
export {
  writeReport,
  type MetricsReport,
  type PredictionRecord,
  type WrittenReport,
  type WriteReportOptions,
  type ReportFailure,
} from './report.js';
export {
  splitDataset,
  writeSplit,
  type LabelledVideo,
  type SplitOptions,
  type DatasetSplit,
  type WriteSplitOptions,
  type WrittenSplit,
  type ClassSplitCounts,
} from './split.js';
export {
  compareReports,
  formatComparison,
  type Comparison,
  type CompareOptions,
  type BootstrapResult,
} from './compare.js';
export type { ScoredSegment } from './timeline.js';
