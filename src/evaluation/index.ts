/** Evaluation's public surface: metrics, reports, splits and comparisons. No tfjs, no ffmpeg. */
export {
  clipMetrics,
  frameMetrics,
  type ClipMetrics,
  type FrameMetrics,
  type ClassScores,
  type ConfusionMatrix,
  type CalibrationBin,
  type ScoredSample,
  type FrameSequence,
} from './metrics.js';
export { aggregateScores, argmax, topK } from './aggregate.js';
export { writeReport, type MetricsReport, type PredictionRecord, type WrittenReport } from './report.js';
export {
  majorityLabel,
  splitDataset,
  writeSplit,
  type LabelledVideo,
  type SplitOptions,
  type DatasetSplit,
  type WriteSplitOptions,
  type WrittenSplit,
} from './split.js';
export { compareReports, formatComparison, type Comparison, type CompareOptions } from './compare.js';
export {
  segmentsFromFrames,
  timeShares,
  UNKNOWN_LABEL,
  type ScoredSegment,
  type TimelineFrame,
  type TimelineOptions,
} from './timeline.js';
export { coverageAt, type CoveragePoint, type ScoredDecision } from './metrics.js';
