/**
 * The report folder of an evaluation run: `metrics.json` (schema below), `predictions.jsonl`,
 * `report.md` and `confusion.png`.
 *
 * `metrics.json` schema, `"schema": "framewise.metrics/1"` (stable: fields are only ever
 * added, and a change of meaning bumps the version):
 * ```
 * {
 *   schema, mode: 'clip' or 'frame',
 *   model:    { id, dir, labels, head, backboneId, trainSeed, framewiseVersion },
 *   dataset:  { source, fingerprint: 'sha256:<hex>', videos, classCounts: {label: n} },
 *   counts:   { videos, evaluated, failed, ignored, clips, frames },
 *   failures: [{ path, label, code, message }],        // excluded from the metrics
 *   ignored:  [{ path, label }],                        // unknown labels, --ignore-unknown-labels
 *   metrics:  clip mode:  { video: ClipMetrics, clip: ClipMetrics }
 *             frame mode: { frame: FrameMetrics }
 *   settings: { topK, aggregate, frames, size, sampling, seed },
 *   versions: { framewise, tfjs, backend: { name, reason } },
 *   timing:   { startedAt, wallMs, ... }                // the only fields that differ between runs
 * }
 * ```
 * `ClipMetrics` and `FrameMetrics` are the types in `metrics.ts`; the confusion matrix
 * (`confusion.labels`, `confusion.matrix`, rows true, columns predicted) sits inside them.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import {
  calibration,
  precisionRecall,
  type ClipMetrics,
  type ConfusionMatrix,
  type CoveragePoint,
  type FrameMetrics,
  type ScoredSample,
} from './metrics.js';
import { escapeXml, prSvg, reliabilitySvg, shortLabel } from './plots.js';

export { shortLabel };
import { OUTPUT_DIRS, replaceDir } from '../fs.js';
import { BACKENDS } from '../tfjs/backends.js';
import { checkSignal, invalid, isPlainObject, nonEmptyString } from '../validate.js';
import type { HeadMode } from '../model/model-info.js';
import type { Aggregate } from './aggregate.js';

export const METRICS_SCHEMA = 'framewise.metrics/1';

export interface ReportFailure {
  path: string;
  label: string;
  code: string;
  message: string;
}

export interface MetricsReport {
  schema: typeof METRICS_SCHEMA;
  mode: HeadMode;
  model: {
    id: string;
    dir: string;
    labels: string[];
    head: string | null;
    backboneId: string | null;
    trainSeed: number | null;
    framewiseVersion: string | null;
    /** What the model folder records of its training: history.csv / curves.png (absolute paths), validation accuracy, an ensemble's members. */
    training?: {
      files: string[];
      valAcc: number | null;
      members: Array<{ seed: number; valAcc: number | null; bestEpoch: number; epochs: number }> | null;
    };
  };
  dataset: {
    source: string;
    fingerprint: string;
    videos: number;
    classCounts: Record<string, number>;
  };
  counts: {
    videos: number;
    evaluated: number;
    failed: number;
    ignored: number;
    clips: number;
    frames: number;
  };
  failures: ReportFailure[];
  ignored: Array<{ path: string; label: string }>;
  metrics: {
    video?: ClipMetrics;
    clip?: ClipMetrics;
    frame?: FrameMetrics;
    /** With a threshold: how much was answered (videos in clip mode, frames in frame mode), and accuracy with `unknown` wrong. */
    coverage?: CoveragePoint;
    /** With `thresholds`: accuracy against coverage at each. */
    thresholds?: CoveragePoint[];
  };
  settings: {
    topK: number;
    aggregate: Aggregate;
    frames: number | null;
    size: number | null;
    sampling: unknown;
    seed: number | null;
    /** The threshold below which a decision is `unknown`, when one was given. */
    threshold?: number;
  };
  versions: { framewise: string; tfjs: string | null; backend: { name: string; reason: string } | null };
  /**
   * The run's clock and what ran: `backboneEngine` (`onnx`, `tfjs` or `none`) and, when tfjs ran
   * the backbone, `backboneBackend` (its backend). Older reports have `backboneBackend` alone,
   * naming the engine or the tfjs backend: `backboneRanOn()` reads both.
   */
  timing: { startedAt: string; wallMs: number; [stage: string]: number | string };
}

/** One line of `predictions.jsonl`: the classify record plus the truth. */
export interface PredictionRecord {
  path: string;
  trueLabel: string;
  label?: string;
  score?: number;
  correct?: boolean;
  topk?: Array<{ label: string; score: number }>;
  clips?: Array<{ start: number; end: number; label: string; score: number; trueLabel?: string }>;
  frames?: Array<{ t: number; label: string; score: number; trueLabel: string }>;
  error?: { code: string; message: string };
  [key: string]: unknown;
}

/**
 * sha256 over the sorted lines `path \t size \t label`, with paths relative to `root` and
 * POSIX separators, so a dataset keeps its fingerprint when its folder moves.
 */
export function datasetFingerprint(
  entries: ReadonlyArray<{ path: string; size: number; label: string }>,
  root: string,
): string {
  const lines = entries
    .map((e) => `${relative(resolve(root), resolve(e.path)).split(sep).join('/')}\t${e.size}\t${e.label}`)
    .sort();
  return `sha256:${createHash('sha256').update(lines.join('\n')).digest('hex')}`;
}

/** The off-diagonal cells, largest first (ties: by true label, then predicted label). */
export function worstConfusedPairs(
  confusion: ConfusionMatrix,
  limit = 10,
): Array<{ trueLabel: string; predicted: string; count: number; share: number }> {
  const out: Array<{ trueLabel: string; predicted: string; count: number; share: number }> = [];
  confusion.matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      if (i !== j && count > 0)
        out.push({
          trueLabel: confusion.labels[i],
          predicted: confusion.labels[j],
          count,
          share: count / total,
        });
    });
  });
  out.sort(
    (a, b) =>
      b.count - a.count ||
      b.share - a.share ||
      a.trueLabel.localeCompare(b.trueLabel) ||
      a.predicted.localeCompare(b.predicted),
  );
  return out.slice(0, limit);
}

// ---------------------------------------------------------------------------------------------
// confusion.png

/** Where everything goes; exported so tests can check the PNG's size. */
export interface ConfusionLayout {
  width: number;
  height: number;
  cell: number;
  left: number;
  top: number;
  labelFont: number;
  countFont: number;
}

/**
 * Cells shrink as classes grow (64 px for a few classes, 24 px at 50 and beyond), and the
 * margins fit the longest label (cut to 28 characters in the middle). 50 classes give about 1.6k px.
 */
export function confusionLayout(labels: readonly string[]): ConfusionLayout {
  const n = Math.max(1, labels.length);
  const cell = Math.max(24, Math.min(64, Math.floor(1000 / n)));
  const labelFont = Math.max(11, Math.min(14, Math.round(cell * 0.5)));
  const countFont = Math.max(9, Math.min(16, Math.round(cell * 0.36)));
  const longest = Math.max(1, ...labels.map((l) => shortLabel(l).length));
  const labelSpace = Math.ceil(longest * labelFont * 0.62) + 10;
  const left = 30 + labelSpace; // axis title, then row labels
  const top = 50 + labelSpace; // title and axis title, then column labels
  const legend = 110;
  // At least 400 px wide, so the title ("Confusion matrix (frames, n=123456)") always fits.
  return {
    width: Math.max(400, left + n * cell + legend),
    height: top + n * cell + 20,
    cell,
    left,
    top,
    labelFont,
    countFont,
  };
}

/** A light-to-dark blue ramp (the ColorBrewer "Blues" ends) for a value in [0, 1]. */
export function rampColour(v: number): string {
  const a = [247, 251, 255];
  const b = [8, 48, 107];
  const t = Math.max(0, Math.min(1, v));
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * The heat-map as SVG. Colour is the row share (the recall of that cell's true class), so
 * rare classes are as visible as common ones; the cell text is the raw count.
 */
export function confusionSvg(confusion: ConfusionMatrix, options: { title?: string } = {}): string {
  const { labels, matrix } = confusion;
  const L = confusionLayout(labels);
  const n = labels.length;
  const font = 'DejaVu Sans, Arial, Helvetica, sans-serif';
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}">`,
  );
  parts.push(`<rect width="${L.width}" height="${L.height}" fill="#ffffff"/>`);
  parts.push(`<g font-family="${font}" fill="#000">`);
  const title = options.title ?? 'Confusion matrix';
  parts.push(`<text x="10" y="22" font-size="16" font-weight="bold">${escapeXml(title)}</text>`);
  parts.push(
    `<text x="${L.left + (n * L.cell) / 2}" y="42" font-size="13" text-anchor="middle">predicted</text>`,
  );
  const midY = L.top + (n * L.cell) / 2;
  parts.push(
    `<text x="16" y="${midY}" font-size="13" text-anchor="middle" transform="rotate(-90 16 ${midY})">true</text>`,
  );
  for (let i = 0; i < n; i++) {
    const label = escapeXml(shortLabel(labels[i]));
    const cy = L.top + i * L.cell + L.cell / 2;
    parts.push(
      `<text x="${L.left - 6}" y="${cy}" font-size="${L.labelFont}" text-anchor="end" dominant-baseline="central">${label}</text>`,
    );
    const cx = L.left + i * L.cell + L.cell / 2;
    // Column labels read upwards, ending just above the grid.
    parts.push(
      `<text x="${cx}" y="${L.top - 6}" font-size="${L.labelFont}" text-anchor="start" dominant-baseline="central" transform="rotate(-90 ${cx} ${L.top - 6})">${label}</text>`,
    );
  }
  for (let i = 0; i < n; i++) {
    const total = matrix[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < n; j++) {
      const count = matrix[i][j];
      const v = total === 0 ? 0 : count / total;
      const x = L.left + j * L.cell;
      const y = L.top + i * L.cell;
      parts.push(
        `<rect x="${x}" y="${y}" width="${L.cell}" height="${L.cell}" fill="${rampColour(v)}" stroke="#d0d0d0" stroke-width="0.5"/>`,
      );
      if (count > 0) {
        const colour = v > 0.5 ? '#ffffff' : '#000000';
        parts.push(
          `<text x="${x + L.cell / 2}" y="${y + L.cell / 2}" font-size="${L.countFont}" fill="${colour}" text-anchor="middle" dominant-baseline="central">${count}</text>`,
        );
      }
    }
  }
  parts.push(
    `<rect x="${L.left}" y="${L.top}" width="${n * L.cell}" height="${n * L.cell}" fill="none" stroke="#444" stroke-width="1"/>`,
  );
  // Colour scale: a vertical bar from 1 (top) to 0 (bottom).
  const barX = L.left + n * L.cell + 24;
  const barH = Math.max(120, Math.min(300, n * L.cell));
  parts.push('<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">');
  for (let s = 0; s <= 10; s++) parts.push(`<stop offset="${s / 10}" stop-color="${rampColour(s / 10)}"/>`);
  parts.push('</linearGradient></defs>');
  parts.push(
    `<rect x="${barX}" y="${L.top}" width="16" height="${barH}" fill="url(#scale)" stroke="#444" stroke-width="0.5"/>`,
  );
  for (const tick of [0, 0.5, 1]) {
    const ty = L.top + barH * (1 - tick);
    parts.push(`<line x1="${barX + 16}" y1="${ty}" x2="${barX + 20}" y2="${ty}" stroke="#444"/>`);
    parts.push(`<text x="${barX + 23}" y="${ty}" font-size="11" dominant-baseline="central">${tick}</text>`);
  }
  parts.push(`<text x="${barX}" y="${L.top - 10}" font-size="11">row share</text>`);
  parts.push('</g></svg>');
  return parts.join('\n');
}

/** The heat-map rendered to PNG by sharp (librsvg). */
export async function confusionPng(
  confusion: ConfusionMatrix,
  options: { title?: string; signal?: AbortSignal } = {},
): Promise<Buffer> {
  return svgPng(confusionSvg(confusion, options), checkSignal('signal', options.signal));
}

/** An SVG made PNG by sharp (loaded when first drawn). */
async function svgPng(svg: string, signal?: AbortSignal): Promise<Buffer> {
  signal?.throwIfAborted();
  const { default: sharp } = await import('sharp');
  return sharp(Buffer.from(svg), { density: 72 }).png({ compressionLevel: 9 }).toBuffer();
}

// ---------------------------------------------------------------------------------------------
// curves.png: a model folder's training curves

/** One epoch of a training history, as `TrainMetrics.history` holds it. */
export interface CurvePoint {
  epoch: number;
  loss: number;
  acc: number;
  valLoss: number | null;
  valAcc: number | null;
}

/** Member colours (ColorBrewer "Dark2"), one per ensemble member. */
const CURVE_COLOURS = [
  '#1b9e77',
  '#d95f02',
  '#7570b3',
  '#e7298a',
  '#66a61e',
  '#e6ab02',
  '#a6761d',
  '#666666',
];

/** One panel of curves.png: its name, its y-axis top, and which value of an epoch it plots (training or validation). */
interface CurvePanel {
  name: string;
  max: number;
  pick(e: CurvePoint, val: boolean): number | null;
}

/** A panel's size and top edge (the same for both panels). */
const CURVE_PANEL = { w: 370, h: 250, top: 60 };

/** A value that can be plotted: not null, not NaN or infinite. */
const finite = (v: number | null): v is number => v !== null && Number.isFinite(v);

/**
 * Loss (left) and accuracy (right) over epochs as SVG: training solid, validation dashed, one
 * colour per ensemble member, the kept (best) epoch of each marked with a ring on its
 * validation curve (its training curve without a validation split).
 */
export function curvesSvg(
  histories: ReadonlyArray<readonly CurvePoint[]>,
  options: { best?: readonly number[]; title?: string } = {},
): string {
  const W = 900;
  const H = histories.length > 1 ? 390 : 360; // room for the members' legend under the epoch axis
  const lefts = [70, 520];
  const font = 'DejaVu Sans, Arial, Helvetica, sans-serif';
  const epochs = Math.max(1, ...histories.map((h) => h.length));
  const losses = histories.flatMap((h) => h.flatMap((e) => [e.loss, e.valLoss])).filter(finite);
  const maxLoss = Math.max(1e-6, ...losses) * 1.05;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<g font-family="${font}" fill="#000">`);
  const title =
    options.title ??
    `Training curves (${histories.length > 1 ? `${histories.length} members, ` : ''}solid: train, dashed: validation, ring: kept epoch)`;
  parts.push(`<text x="10" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  const panels: CurvePanel[] = [
    { name: 'loss', max: maxLoss, pick: (e: CurvePoint, val: boolean) => (val ? e.valLoss : e.loss) },
    { name: 'accuracy', max: 1, pick: (e: CurvePoint, val: boolean) => (val ? e.valAcc : e.acc) },
  ];
  panels.forEach((p, pi) => {
    parts.push(...curvePanelSvg(p, lefts[pi], histories, epochs, options.best));
  });
  if (histories.length > 1) {
    histories.forEach((_, m) => {
      const lx = 70 + m * 90;
      parts.push(
        `<rect x="${lx}" y="${H - 24}" width="12" height="12" fill="${CURVE_COLOURS[m % CURVE_COLOURS.length]}"/>`,
      );
      parts.push(
        `<text x="${lx + 16}" y="${H - 18}" font-size="11" dominant-baseline="central">member ${m + 1}</text>`,
      );
    });
  }
  parts.push('</g></svg>');
  return parts.join('\n');
}

/** The SVG elements of one panel at `left`: frame and axes, then each member's curves and its kept epoch's ring. */
function curvePanelSvg(
  p: CurvePanel,
  left: number,
  histories: ReadonlyArray<readonly CurvePoint[]>,
  epochs: number,
  bestEpochs?: readonly number[],
): string[] {
  const panel = CURVE_PANEL;
  const parts: string[] = [];
  const x = (epoch: number): number =>
    left + (epochs === 1 ? panel.w / 2 : ((epoch - 1) / (epochs - 1)) * panel.w);
  const y = (v: number): number => panel.top + panel.h - (Math.min(v, p.max) / p.max) * panel.h;
  parts.push(
    `<text x="${left + panel.w / 2}" y="${panel.top - 10}" font-size="13" text-anchor="middle">${p.name}</text>`,
  );
  parts.push(
    `<rect x="${left}" y="${panel.top}" width="${panel.w}" height="${panel.h}" fill="none" stroke="#444" stroke-width="1"/>`,
  );
  for (const tick of [0, 0.5, 1]) {
    const ty = panel.top + panel.h * (1 - tick);
    parts.push(`<line x1="${left - 4}" y1="${ty}" x2="${left}" y2="${ty}" stroke="#444"/>`);
    parts.push(
      `<text x="${left - 6}" y="${ty}" font-size="11" text-anchor="end" dominant-baseline="central">${Number((p.max * tick).toPrecision(2))}</text>`,
    );
  }
  for (const tick of [...new Set([1, Math.ceil(epochs / 2), epochs])]) {
    parts.push(
      `<text x="${x(tick)}" y="${panel.top + panel.h + 16}" font-size="11" text-anchor="middle">${tick}</text>`,
    );
  }
  parts.push(
    `<text x="${left + panel.w / 2}" y="${panel.top + panel.h + 34}" font-size="12" text-anchor="middle">epoch</text>`,
  );
  histories.forEach((history, m) => {
    const colour = CURVE_COLOURS[m % CURVE_COLOURS.length];
    const hasVal = history.some((e) => finite(p.pick(e, true)));
    for (const val of hasVal ? [false, true] : [false]) {
      const points = history
        .filter((e) => finite(p.pick(e, val)))
        .map((e) => `${x(e.epoch).toFixed(1)},${y(p.pick(e, val)!).toFixed(1)}`);
      if (points.length === 0) continue;
      const dash = val ? ' stroke-dasharray="6 4"' : '';
      parts.push(
        `<polyline points="${points.join(' ')}" fill="none" stroke="${colour}" stroke-width="1.8"${dash}/>`,
      );
    }
    const best = bestEpochs?.[m];
    const kept = best === undefined ? undefined : history.find((e) => e.epoch === best);
    const value = kept ? p.pick(kept, hasVal) : null;
    if (kept && finite(value))
      parts.push(
        `<circle cx="${x(kept.epoch)}" cy="${y(value)}" r="5" fill="none" stroke="${colour}" stroke-width="2"/>`,
      );
  });
  return parts;
}

/** The curves rendered to PNG by sharp (librsvg), as the confusion matrix is. */
export async function curvesPng(
  histories: ReadonlyArray<readonly CurvePoint[]>,
  options: { best?: readonly number[]; title?: string; signal?: AbortSignal } = {},
): Promise<Buffer> {
  checkSignal('signal', options.signal);
  const { default: sharp } = await import('sharp');
  return sharp(Buffer.from(curvesSvg(histories, options)), { density: 72 })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

// ---------------------------------------------------------------------------------------------
// report.md

const pct = (v: number | null | undefined): string =>
  v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`;
const num = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined ? '–' : v.toFixed(digits);
const md = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * What ran the backbone, from a report's timing: `backboneEngine` and, when tfjs ran it,
 * `backboneBackend`. An older report has `backboneBackend` alone, naming the engine (`onnx`,
 * `none`) or the tfjs backend that ran: it reads the same way.
 */
export function backboneRanOn(timing: MetricsReport['timing']): { engine: string; backend?: string } {
  const engine = typeof timing.backboneEngine === 'string' ? timing.backboneEngine : undefined;
  const backend = typeof timing.backboneBackend === 'string' ? timing.backboneBackend : undefined;
  if (engine) return backend ? { engine, backend } : { engine };
  if (!backend) return { engine: '–' };
  return BACKENDS.has(backend) ? { engine: 'tfjs', backend } : { engine: backend };
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function perClassTable(m: ClipMetrics | FrameMetrics): string {
  return table(
    ['class', 'precision', 'recall', 'F1', 'support', 'predicted'],
    m.perClass.map((c) => [
      md(c.label),
      num(c.precision),
      num(c.recall),
      num(c.f1),
      String(c.support),
      String(c.predicted),
    ]),
  );
}

/** Human-readable summary: tables, worst-confused pairs, misclassified and failed videos. */
export function reportMarkdown(
  report: MetricsReport,
  predictions: readonly PredictionRecord[],
  options: { reportDir?: string; pr?: boolean; reliability?: boolean } = {},
): string {
  const { video, clip, frame } = report.metrics;
  const body =
    report.mode === 'clip' && video && clip
      ? clipSections(video, clip, report.settings.aggregate, predictions)
      : report.mode === 'frame' && frame
        ? frameSections(frame, predictions)
        : [];
  return [
    ...headerLines(report, options),
    ...body,
    ...coverageSection(report),
    ...trainingSection(report, options.reportDir),
    ...leftOutSections(report),
    ...runSection(report),
  ].join('\n');
}

/** `## Coverage`: with a threshold or thresholds, how much is answered and how much is right. */
function ranOn({ engine, backend }: { engine: string; backend?: string }): string {
  return backend ? `${engine} (${backend})` : engine;
}

function coverageSection(report: MetricsReport): string[] {
  const { coverage, thresholds } = report.metrics;
  const points = [...(coverage ? [coverage] : []), ...(thresholds ?? [])];
  if (points.length === 0) return [];
  const unit = report.mode === 'clip' ? 'videos' : 'frames';
  return [
    '## Coverage',
    '',
    `Below a threshold a ${unit === 'videos' ? 'video' : 'frame'} is \`unknown\`, which counts as wrong. Coverage is the share of ${unit} at or above it.`,
    '',
    table(
      ['threshold', 'coverage', 'accuracy', 'accuracy of the answered'],
      points.map((p) => [String(p.threshold), pct(p.coverage), pct(p.accuracy), pct(p.answeredAccuracy)]),
    ),
    '',
  ];
}

/** `## Training`: links to the model folder's history and curves, and an ensemble's members beside the ensemble. */
function trainingSection(report: MetricsReport, reportDir: string | undefined): string[] {
  const t = report.model.training;
  if (!t) return [];
  // Relative to the report folder, so the links work wherever both folders move together.
  const href = (file: string): string =>
    (reportDir ? relative(reportDir, file) : file).split(sep).join('/').replace(/ /g, '%20');
  const out = ['## Training', ''];
  if (t.files.length > 0)
    out.push(`- model folder: ${t.files.map((f) => `[${md(basename(f))}](${href(f)})`).join(', ')}`, '');
  const curves = t.files.find((f) => basename(f) === 'curves.png');
  if (curves) out.push(`![training curves](${href(curves)})`, '');
  if (t.members) {
    out.push(
      table(
        ['head', 'seed', 'kept epoch', 'validation accuracy'],
        [
          ...t.members.map((m, k) => [
            `member ${k + 1}`,
            String(m.seed),
            `${m.bestEpoch} of ${m.epochs}`,
            pct(m.valAcc),
          ]),
          ['ensemble (averaged)', '–', '–', pct(t.valAcc)],
        ],
      ),
      '',
    );
  } else if (t.valAcc !== null) {
    out.push(`- validation accuracy at training: ${pct(t.valAcc)}`, '');
  }
  return out;
}

/** The title, and what was evaluated with what. */
function headerLines(report: MetricsReport, plots: { pr?: boolean; reliability?: boolean }): string[] {
  const { model, dataset, counts, versions } = report;
  return [
    '# Evaluation report',
    '',
    `- model: \`${model.id}\` (${md(model.dir)}), mode \`${report.mode}\`${model.head ? `, head \`${model.head}\`` : ''}`,
    `- dataset: ${md(dataset.source)}, ${dataset.videos} videos, fingerprint \`${dataset.fingerprint}\``,
    `- evaluated ${counts.evaluated} videos (${counts.clips} clips${counts.frames ? `, ${counts.frames} frames` : ''}); ` +
      `${counts.failed} failed; ${counts.ignored} ignored (unknown labels)`,
    // Two ran: the backbone's engine (`none` when every embedding came from the cache) and the
    // head's tfjs backend.
    `- backbone ran on: ${ranOn(backboneRanOn(report.timing))}; head ran on: ${versions.backend ? `${versions.backend.name} (${versions.backend.reason})` : '–'}; ` +
      `framewise ${versions.framewise}, tfjs ${versions.tfjs ?? '–'}`,
    '',
    '![confusion matrix](confusion.png)',
    '',
    ...(plots.pr ? ['![precision-recall per class](pr.png)', ''] : []),
    ...(plots.reliability ? ['![reliability diagram](reliability.png)', ''] : []),
  ];
}

/** Clip mode: video and clip metrics side by side, then the video level in detail. */
function clipSections(
  v: ClipMetrics,
  c: ClipMetrics,
  aggregate: MetricsReport['settings']['aggregate'],
  predictions: readonly PredictionRecord[],
): string[] {
  const k = v.topK?.k ?? c.topK?.k;
  const summary = table(
    ['metric', `video (${aggregate} of clips)`, 'clip'],
    [
      ['count', String(v.count), String(c.count)],
      ['top-1 accuracy', pct(v.top1), pct(c.top1)],
      ...(k ? [[`top-${k} accuracy`, pct(v.topK?.accuracy), pct(c.topK?.accuracy)]] : []),
      ['mean class accuracy', pct(v.meanClassAccuracy), pct(c.meanClassAccuracy)],
      ['macro-F1', num(v.macroF1), num(c.macroF1)],
      ['weighted-F1', num(v.weightedF1), num(c.weightedF1)],
      ['log loss', num(v.logLoss), num(c.logLoss)],
      ['ECE (10 bins)', num(v.ece), num(c.ece)],
    ],
  );
  const wrong = predictions.filter((p) => !p.error && p.correct === false);
  return [
    '## Summary',
    '',
    summary,
    '',
    '## Per class (video level)',
    '',
    perClassTable(v),
    '',
    ...worstPairsSection(v.confusion, 'video level', 'videos', 'None: every video was classified correctly.'),
    `## Misclassified videos (${wrong.length})`,
    '',
    ...(wrong.length > 0
      ? [
          table(
            ['video', 'true', 'predicted', 'score'],
            wrong.map((p) => [md(p.path), md(p.trueLabel), md(p.label ?? ''), num(p.score)]),
          ),
          '',
        ]
      : []),
  ];
}

/** Frame mode: the frame metrics, then the videos with mistagged frames, worst first. */
function frameSections(f: FrameMetrics, predictions: readonly PredictionRecord[]): string[] {
  const summary = table(
    ['metric', 'value'],
    [
      ['videos', String(f.videos)],
      ['frames', String(f.frames)],
      ['frame accuracy', pct(f.frameAccuracy)],
      ['frame macro-F1', num(f.macroF1)],
      ['segmental edit score', num(f.edit)],
      ...Object.entries(f.f1At).map(([o, v]) => [`F1@${Math.round(Number(o) * 100)}`, num(v)]),
    ],
  );
  const imperfect = predictions
    .filter((p) => !p.error && p.frames && p.frames.some((fr) => fr.label !== fr.trueLabel))
    .map((p) => ({ p, acc: p.frames!.filter((fr) => fr.label === fr.trueLabel).length / p.frames!.length }))
    .sort((a, b) => a.acc - b.acc || a.p.path.localeCompare(b.p.path));
  return [
    '## Summary',
    '',
    summary,
    '',
    '## Per class (frames)',
    '',
    perClassTable(f),
    '',
    ...worstPairsSection(f.confusion, 'frames', 'frames', 'None: every frame was tagged correctly.'),
    `## Videos with mistagged frames (${imperfect.length})`,
    '',
    ...(imperfect.length > 0
      ? [
          table(
            ['video', 'frame accuracy', 'frames'],
            imperfect.map(({ p, acc }) => [md(p.path), pct(acc), String(p.frames!.length)]),
          ),
          '',
        ]
      : []),
  ];
}

/** `## Worst-confused pairs (level)`: a table counted in `unit`, or `none` when there is no mistake. */
function worstPairsSection(confusion: ConfusionMatrix, level: string, unit: string, none: string): string[] {
  const pairs = worstConfusedPairs(confusion);
  return [
    `## Worst-confused pairs (${level})`,
    '',
    pairs.length === 0
      ? none
      : table(
          ['true', 'predicted as', unit, 'share of true class'],
          pairs.map((p) => [md(p.trueLabel), md(p.predicted), String(p.count), pct(p.share)]),
        ),
    '',
  ];
}

/** The videos left out of the metrics: failed ones (always a heading), ignored ones (when any). */
function leftOutSections(report: MetricsReport): string[] {
  const { failures, ignored } = report;
  const out = [`## Failed videos (${failures.length})`, ''];
  if (failures.length > 0) {
    out.push('These videos could not be decoded and are excluded from every metric above.', '');
    out.push(
      table(
        ['video', 'label', 'code', 'message'],
        failures.map((f) => [md(f.path), md(f.label), f.code, md(f.message.slice(0, 200))]),
      ),
      '',
    );
  }
  if (ignored.length > 0) {
    out.push(`## Ignored videos: label unknown to the model (${ignored.length})`, '');
    out.push(
      table(
        ['video', 'label'],
        ignored.map((f) => [md(f.path), md(f.label)]),
      ),
      '',
    );
  }
  return out;
}

function runSection(report: MetricsReport): string[] {
  return [
    '## Run',
    '',
    `- settings: \`${JSON.stringify(report.settings)}\``,
    `- started ${report.timing.startedAt}, wall time ${(report.timing.wallMs / 1000).toFixed(2)} s`,
    '',
  ];
}

// ---------------------------------------------------------------------------------------------

export interface WriteReportOptions {
  signal?: AbortSignal;
  /**
   * The scored samples behind the confusion matrix (videos in clip mode, frames in frame
   * mode): with them, `pr.png` and `reliability.png` are drawn from these.
   * @default none: no pr.png; reliability.png from the video-level calibration bins, when there are some
   */
  samples?: readonly ScoredSample[];
}

export interface WrittenReport {
  metrics: string;
  predictions: string;
  markdown: string;
  confusion: string;
  /** Set when it was drawn (see `WriteReportOptions.samples`). */
  pr?: string;
  reliability?: string;
}

/** Writes the four files of a report folder, the folder as a whole atomically (see `replaceDir`). */
export async function writeReport(
  dir: string,
  report: MetricsReport,
  predictions: readonly PredictionRecord[],
  options: WriteReportOptions = {},
): Promise<WrittenReport> {
  nonEmptyString('dir', dir);
  if (!isPlainObject(report) || report.schema !== METRICS_SCHEMA)
    throw invalid('report.schema', `'${METRICS_SCHEMA}'`, (report as { schema?: unknown })?.schema);
  const signal = checkSignal('signal', options.signal);
  const names = {
    metrics: 'metrics.json',
    predictions: 'predictions.jsonl',
    markdown: 'report.md',
    confusion: 'confusion.png',
    pr: 'pr.png',
    reliability: 'reliability.png',
  } as const;
  const samples = options.samples;
  const unit = report.mode === 'clip' ? 'videos' : 'frames';
  const pr = samples && samples.length > 0 ? precisionRecall(samples, report.model.labels) : undefined;
  const cal =
    samples && samples.length > 0
      ? calibration(samples)
      : report.metrics.video
        ? { ece: report.metrics.video.ece, bins: report.metrics.video.calibration }
        : undefined;
  const plots = { pr: pr !== undefined, reliability: cal !== undefined };
  await replaceDir(dir, OUTPUT_DIRS.report, async (tmp) => {
    await writeFile(join(tmp, names.metrics), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(tmp, names.predictions), predictions.map((p) => `${JSON.stringify(p)}\n`).join(''));
    await writeFile(
      join(tmp, names.markdown),
      reportMarkdown(report, predictions, { ...plots, reportDir: resolve(dir) }),
    );
    signal?.throwIfAborted();
    const png = (svg: string): Promise<Buffer> => svgPng(svg, signal);
    if (pr)
      await writeFile(
        join(tmp, names.pr),
        await png(prSvg(pr, { title: `Precision-recall (${unit}, one-vs-rest)` })),
      );
    if (cal)
      await writeFile(
        join(tmp, names.reliability),
        await png(
          reliabilitySvg(cal.bins, cal.ece, { title: `Reliability (${unit}, ECE ${cal.ece.toFixed(3)})` }),
        ),
      );
    const confusion = report.metrics.video?.confusion ?? report.metrics.frame?.confusion;
    if (confusion) {
      const title =
        report.mode === 'clip'
          ? `Confusion matrix (videos, n=${report.metrics.video!.count})`
          : `Confusion matrix (frames, n=${report.metrics.frame!.frames})`;
      await writeFile(join(tmp, names.confusion), await confusionPng(confusion, { title, signal }));
    }
    signal?.throwIfAborted();
  });
  return {
    metrics: resolve(dir, names.metrics),
    predictions: resolve(dir, names.predictions),
    markdown: resolve(dir, names.markdown),
    confusion: resolve(dir, names.confusion),
    ...(plots.pr ? { pr: resolve(dir, names.pr) } : {}),
    ...(plots.reliability ? { reliability: resolve(dir, names.reliability) } : {}),
  };
}
