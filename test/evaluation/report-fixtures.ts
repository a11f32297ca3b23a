/** Hand-made reports for the report and compare tests, built the way eval builds them. */
import { clipMetrics } from '../../src/evaluation/metrics.js';
import { METRICS_SCHEMA, type MetricsReport, type PredictionRecord } from '../../src/evaluation/report.js';

/** A clip-mode report over hand-made predictions, the way eval builds one. */
export function clipReport(
  labels: string[],
  preds: Array<{ path: string; truth: string; probs: number[] }>,
  failures: MetricsReport['failures'] = [],
): { report: MetricsReport; predictions: PredictionRecord[] } {
  const samples = preds.map((p) => ({ truth: labels.indexOf(p.truth), probs: p.probs }));
  const m = clipMetrics(samples, { labels, topK: 5 });
  const predictions: PredictionRecord[] = preds.map((p) => {
    const best = p.probs.indexOf(Math.max(...p.probs));
    return {
      path: p.path,
      label: labels[best],
      score: p.probs[best],
      trueLabel: p.truth,
      correct: labels[best] === p.truth,
    };
  });
  const report: MetricsReport = {
    schema: METRICS_SCHEMA,
    mode: 'clip',
    model: {
      id: 'test-model',
      dir: '/models/x',
      labels,
      head: 'lstm',
      backboneId: 'bb',
      trainSeed: 1,
      framewiseVersion: '0.1.0',
    },
    dataset: {
      source: '/data',
      fingerprint: 'sha256:00',
      videos: preds.length + failures.length,
      classCounts: {},
    },
    counts: {
      videos: preds.length + failures.length,
      evaluated: preds.length,
      failed: failures.length,
      ignored: 0,
      clips: preds.length,
      frames: 0,
    },
    failures,
    ignored: [],
    metrics: { video: m, clip: m },
    settings: {
      topK: 5,
      aggregate: 'mean',
      frames: 8,
      size: 224,
      sampling: { kind: 'uniform', frames: 8 },
      seed: null,
    },
    versions: { framewise: '0.1.0', tfjs: '4.22.0', backend: { name: 'wasm', reason: 'test' } },
    timing: { startedAt: '2026-01-01T00:00:00.000Z', wallMs: 1234, backboneEngine: 'onnx' },
  };
  return { report, predictions };
}
