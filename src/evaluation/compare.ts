/**
 * Side-by-side comparison of evaluation reports, with a paired bootstrap confidence interval
 * of the accuracy difference on the videos that the reports share.
 *
 * The first report is the baseline; each other report is compared with it. For the
 * bootstrap, each shared video contributes `(correct, total)` to both reports: `(0|1, 1)` in
 * clip mode (the video-level prediction), `(correct frames, frames)` in frame mode, so the
 * accuracy of a resample is `sum(correct) / sum(total)` (video accuracy, or micro frame
 * accuracy). A resample draws n shared videos with replacement, the same draw for both
 * reports (paired), from a `seedrandom` stream, so the interval is reproducible. The interval
 * is the percentile interval (linear interpolation between order statistics).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import seedrandom from 'seedrandom';
import { UsageError } from '../errors.js';
import {
  checkSignal,
  invalid,
  isPlainObject,
  LIMITS,
  nonNegativeInteger,
  numberInRange,
  positiveInteger,
} from '../validate.js';
import { backboneRanOn, METRICS_SCHEMA, type MetricsReport, type PredictionRecord } from './report.js';
import type { HeadMode } from '../model/model-info.js';

/** One video's score in one report. */
export interface VideoScore {
  correct: number;
  total: number;
}

export interface BootstrapOptions {
  /** Number of resamples. @default 1000 */
  resamples?: number;
  /** Seed of the resampling stream. @default 0 */
  seed?: number;
  /** Coverage of the interval. @default 0.95 */
  confidence?: number;
}

export interface BootstrapResult {
  /** Videos in both reports. */
  shared: number;
  accuracyA: number;
  accuracyB: number;
  /** accuracyB - accuracyA on the shared videos. */
  difference: number;
  ci: [number, number];
  resamples: number;
  seed: number;
  confidence: number;
}

/** Quantile with linear interpolation between order statistics (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const acc = (c: number, t: number): number => (t === 0 ? 0 : c / t);

/** Paired bootstrap of accuracy(b) - accuracy(a); `a[i]` and `b[i]` are the same video. */
export function pairedBootstrap(
  a: readonly VideoScore[],
  b: readonly VideoScore[],
  options: BootstrapOptions = {},
): BootstrapResult {
  if (a.length !== b.length) throw invalid('b.length', `${a.length} (paired with a)`, b.length);
  const resamples = positiveInteger('resamples', options.resamples ?? 1000, LIMITS.resamples);
  const seed = nonNegativeInteger('seed', options.seed ?? 0, LIMITS.seed);
  const confidence = numberInRange('confidence', options.confidence ?? 0.95, 0, 1, {
    exclusiveMin: true,
    exclusiveMax: true,
  });
  const n = a.length;
  const sum = (xs: readonly VideoScore[]): VideoScore =>
    xs.reduce((s, x) => ({ correct: s.correct + x.correct, total: s.total + x.total }), {
      correct: 0,
      total: 0,
    });
  const sa = sum(a);
  const sb = sum(b);
  const accuracyA = acc(sa.correct, sa.total);
  const accuracyB = acc(sb.correct, sb.total);
  if (n === 0)
    return { shared: 0, accuracyA, accuracyB, difference: 0, ci: [0, 0], resamples, seed, confidence };
  const rng = seedrandom(String(seed));
  const diffs = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let ca = 0;
    let ta = 0;
    let cb = 0;
    let tb = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rng() * n);
      ca += a[j].correct;
      ta += a[j].total;
      cb += b[j].correct;
      tb += b[j].total;
    }
    diffs[r] = acc(cb, tb) - acc(ca, ta);
  }
  const sorted = Array.from(diffs).sort((x, y) => x - y);
  const alpha = (1 - confidence) / 2;
  return {
    shared: n,
    accuracyA,
    accuracyB,
    difference: accuracyB - accuracyA,
    ci: [quantile(sorted, alpha), quantile(sorted, 1 - alpha)],
    resamples,
    seed,
    confidence,
  };
}

/** A loaded report: its metrics and its per-video scores keyed by resolved path. */
export interface LoadedReport {
  name: string;
  dir: string;
  report: MetricsReport;
  videos: Map<string, VideoScore>;
}

/** Per-video scores from `predictions.jsonl` records (error records are skipped). */
export function videoScores(records: readonly PredictionRecord[], mode: HeadMode): Map<string, VideoScore> {
  const out = new Map<string, VideoScore>();
  for (const r of records) {
    if (r.error) continue;
    const key = resolve(r.path);
    if (mode === 'frame') {
      const frames = r.frames ?? [];
      out.set(key, { correct: frames.filter((f) => f.label === f.trueLabel).length, total: frames.length });
    } else {
      out.set(key, { correct: r.label === r.trueLabel ? 1 : 0, total: 1 });
    }
  }
  return out;
}

/** Reads a report folder (or a `metrics.json` path) and its `predictions.jsonl`. */
export async function loadReport(
  path: string,
  options: { signal?: AbortSignal } = {},
): Promise<LoadedReport> {
  checkSignal('signal', options.signal);
  const s = await stat(path).catch(() => null);
  if (!s) throw new UsageError(`Report not found: ${path}`);
  const dir = s.isDirectory() ? resolve(path) : dirname(resolve(path));
  const metricsFile = s.isDirectory() ? join(dir, 'metrics.json') : resolve(path);
  let report: MetricsReport;
  try {
    report = JSON.parse(await readFile(metricsFile, 'utf8')) as MetricsReport;
  } catch (error) {
    throw new UsageError(`Cannot read ${metricsFile}: ${(error as Error).message}`);
  }
  if (!isPlainObject(report) || report.schema !== METRICS_SCHEMA) {
    throw new UsageError(
      `${metricsFile} is not a framewise metrics file (schema ${JSON.stringify((report as { schema?: unknown })?.schema)}, expected '${METRICS_SCHEMA}')`,
    );
  }
  if (isPlainObject(report.timing)) upgradeTiming(report.timing);
  let records: PredictionRecord[] = [];
  const text = await readFile(join(dir, 'predictions.jsonl'), 'utf8').catch(() => '');
  records = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as PredictionRecord);
  return { name: basename(dir), dir, report, videos: videoScores(records, report.mode) };
}

/** An older report's `timing.backboneBackend` named the engine or the tfjs backend: read as today's fields. */
function upgradeTiming(timing: MetricsReport['timing']): void {
  if (timing.backboneEngine !== undefined || timing.backboneBackend === undefined) return;
  const { engine, backend } = backboneRanOn(timing);
  delete timing.backboneBackend;
  timing.backboneEngine = engine;
  if (backend) timing.backboneBackend = backend;
}

/** The main metrics of a report, by display name; `null` where a report lacks one. */
export function mainMetrics(report: MetricsReport): Array<[string, number | null]> {
  if (report.mode === 'frame') {
    const f = report.metrics.frame;
    return [
      ['frame accuracy', f?.frameAccuracy ?? null],
      ['frame macro-F1', f?.macroF1 ?? null],
      ['edit score', f?.edit ?? null],
      ['F1@10', f?.f1At['0.1'] ?? null],
      ['F1@25', f?.f1At['0.25'] ?? null],
      ['F1@50', f?.f1At['0.5'] ?? null],
    ];
  }
  const v = report.metrics.video;
  return [
    ['top-1 accuracy', v?.top1 ?? null],
    [`top-${v?.topK?.k ?? report.settings.topK} accuracy`, v?.topK?.accuracy ?? null],
    ['mean class accuracy', v?.meanClassAccuracy ?? null],
    ['macro-F1', v?.macroF1 ?? null],
    ['weighted-F1', v?.weightedF1 ?? null],
    ['log loss', v?.logLoss ?? null],
    ['ECE', v?.ece ?? null],
  ];
}

export interface CompareOptions extends BootstrapOptions {
  signal?: AbortSignal;
}

export interface Comparison {
  mode: HeadMode;
  reports: Array<{ name: string; dir: string; modelId: string; fingerprint: string; videos: number }>;
  /** One row per main metric: the value in each report, and each report minus the first. */
  rows: Array<{ metric: string; values: Array<number | null>; differences: Array<number | null> }>;
  /** For each report after the first: the paired bootstrap against the first. */
  bootstrap: Array<BootstrapResult & { baseline: string; other: string }>;
  warnings: string[];
}

/** Compares reports: the first is the baseline. All must have the same mode. */
export async function compareReports(
  paths: readonly string[],
  options: CompareOptions = {},
): Promise<Comparison> {
  if (!Array.isArray(paths) || paths.length < 2) throw invalid('paths', 'at least two reports', paths);
  const signal = checkSignal('signal', options.signal);
  const loaded: LoadedReport[] = [];
  for (const p of paths) loaded.push(await loadReport(p, { signal }));
  // Two folders with the same name (run1/report, run2/report): name them by their parent too.
  const names = loaded.map((l) => l.name);
  loaded.forEach((l) => {
    if (names.filter((n) => n === l.name).length > 1) l.name = `${basename(dirname(l.dir))}/${l.name}`;
  });
  const mode = loaded[0].report.mode;
  for (const l of loaded) {
    if (l.report.mode !== mode)
      throw new UsageError(
        `Cannot compare a ${mode}-mode report (${loaded[0].name}) with a ${l.report.mode}-mode report (${l.name})`,
      );
  }
  const warnings: string[] = [];
  const base = loaded[0];
  for (const l of loaded.slice(1)) {
    if (l.report.dataset.fingerprint !== base.report.dataset.fingerprint) {
      warnings.push(
        `${l.name} was evaluated on a different dataset than ${base.name} (fingerprints differ); the bootstrap uses the ${'shared'} videos only`,
      );
    }
  }
  const metricSets = loaded.map((l) => mainMetrics(l.report));
  // A metric no report has (top-5 with 5 classes or fewer) is no row: a row of dashes says nothing.
  const rows = metricSets[0]
    .map(([metric], i) => {
      const values = metricSets.map((m) => m[i][1]);
      const differences = values.map((v) => (v === null || values[0] === null ? null : v - values[0]));
      return { metric, values, differences };
    })
    .filter((row) => row.values.some((v) => v !== null));
  const bootstrap: Comparison['bootstrap'] = [];
  for (const l of loaded.slice(1)) {
    signal?.throwIfAborted();
    const shared = [...base.videos.keys()].filter((k) => l.videos.has(k)).sort();
    if (shared.length === 0)
      warnings.push(`${l.name} shares no videos with ${base.name}; no confidence interval`);
    const result = pairedBootstrap(
      shared.map((k) => base.videos.get(k)!),
      shared.map((k) => l.videos.get(k)!),
      options,
    );
    bootstrap.push({ ...result, baseline: base.name, other: l.name });
  }
  return {
    mode,
    reports: loaded.map((l) => ({
      name: l.name,
      dir: l.dir,
      modelId: l.report.model.id,
      fingerprint: l.report.dataset.fingerprint,
      videos: l.report.counts.evaluated,
    })),
    rows,
    bootstrap,
    warnings,
  };
}

/** A plain-text table for the terminal. */
export function formatComparison(c: Comparison): string {
  const fmt = (v: number | null, signed = false): string =>
    v === null ? '–' : `${signed && v >= 0 ? '+' : ''}${v.toFixed(4)}`;
  const header = ['metric', ...c.reports.map((r) => r.name), ...c.reports.slice(1).map((r) => `Δ ${r.name}`)];
  const rows = c.rows.map((r) => [
    r.metric,
    ...r.values.map((v) => fmt(v)),
    ...r.differences.slice(1).map((d) => fmt(d, true)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), ''];
  for (const b of c.bootstrap) {
    out.push(
      `${b.other} - ${b.baseline}: accuracy ${fmt(b.difference, true)} on ${b.shared} shared videos, ` +
        `${Math.round(b.confidence * 100)}% CI [${fmt(b.ci[0], true)}, ${fmt(b.ci[1], true)}] (paired bootstrap, ${b.resamples} resamples, seed ${b.seed})`,
    );
  }
  for (const w of c.warnings) out.push(`warning: ${w}`);
  return `${out.join('\n')}\n`;
}
