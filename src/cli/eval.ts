/**
 * `framewise eval <dataset> --model <modelDir>`: metrics of a model on a labelled dataset.
 * Prints a compact table (or, with `--json`, metrics.json) on stdout and writes the report
 * folder with `--out`. Frames, size and sampling come from the model unless given.
 *
 * Exit codes: 0 every video evaluated; 1 some videos failed to decode (they are listed and
 * excluded, and the report is still written); 2 usage or configuration error, including a
 * dataset label the model does not know (unless `--ignore-unknown-labels`); 130 interrupted.
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import type { MetricsReport } from '../index.js';
import { AGGREGATES, DEFAULT_THRESHOLDS } from '../tasks/options.js';
import {
  choiceFlag,
  backboneFlags,
  modelDirFlag,
  intFlag,
  isAbort,
  pipelineOptionsFrom,
  probabilityFlag,
  samplingFlags,
  stringFlag,
  type Flags,
} from './common.js';
import { OUTPUT_DIRS, replaceableState } from '../output/index.js';
import { handleInterrupts } from './interrupt.js';
import { createRenderer, withMetrics } from './progress.js';

export function register(cli: CAC): void {
  const command = cli
    .command(
      'eval <dataset>',
      'Evaluate a model on a labelled dataset (folder per class, CSV or JSONL manifest)',
    )
    .option('--model <dir>', 'Model folder (model.json, weights, framewise.json)')
    .option(
      '--out <dir>',
      'Report folder: metrics.json, predictions.jsonl, report.md, confusion.png, pr.png, reliability.png',
    )
    .option('--top-k <k>', 'k of top-k accuracy (default: 5; reported when there are more than k classes)')
    .option('--aggregate <how>', `Clip scores to a video score: ${AGGREGATES.join(' | ')} (default: mean)`)
    .option('--json', 'Print metrics.json on stdout instead of the table')
    .option('--force', 'Replace an existing report folder (only one framewise wrote, or an empty folder)')
    .option(
      '--ignore-unknown-labels',
      'Leave out videos whose label the model does not know, instead of failing',
    )
    .option(
      '--threshold <p>',
      "A video (clip model) or frame (frame model) whose top score is below p is 'unknown', counted wrong; reports the coverage",
    )
    .option(
      '--thresholds [list]',
      `Print accuracy against coverage at these thresholds (comma-separated; default: ${DEFAULT_THRESHOLDS.join(',')})`,
    );
  samplingFlags(command, 'model');
  backboneFlags(command);
  command
    .example('framewise eval data/test.csv --model models/lstm --out reports/lstm')
    .example('framewise eval data/test/ --model models/lstm --json > metrics.json')
    .action((dataset: unknown, flags: Flags) => runEval(String(dataset), flags));
}

const f4 = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : v.toFixed(4));

/** The compact table printed by `eval`. */
export function formatEvalTable(report: MetricsReport, reportDir?: string): string {
  const lines: string[] = [];
  const c = report.counts;
  lines.push(
    `${c.evaluated} videos evaluated${c.failed ? `, ${c.failed} failed` : ''}${c.ignored ? `, ${c.ignored} ignored` : ''}; ` +
      `${c.clips} clips${c.frames ? `, ${c.frames} frames` : ''}; mode ${report.mode}; model ${report.model.id}`,
  );
  let rows: string[][];
  if (report.mode === 'clip') {
    const v = report.metrics.video!;
    const k = report.metrics.clip!;
    rows = [
      ['metric', `video (${report.settings.aggregate})`, 'clip'],
      ['top-1 accuracy', f4(v.top1), f4(k.top1)],
      ...(v.topK ? [[`top-${v.topK.k} accuracy`, f4(v.topK.accuracy), f4(k.topK?.accuracy)]] : []),
      ['mean class accuracy', f4(v.meanClassAccuracy), f4(k.meanClassAccuracy)],
      ['macro-F1', f4(v.macroF1), f4(k.macroF1)],
      ['weighted-F1', f4(v.weightedF1), f4(k.weightedF1)],
      ['log loss', f4(v.logLoss), f4(k.logLoss)],
      ['ECE (10 bins)', f4(v.ece), f4(k.ece)],
    ];
  } else {
    const m = report.metrics.frame!;
    rows = [
      ['metric', 'value'],
      ['frame accuracy', f4(m.frameAccuracy)],
      ['frame macro-F1', f4(m.macroF1)],
      ['edit score', f4(m.edit)],
      ...Object.entries(m.f1At).map(([o, v]) => [`F1@${Math.round(Number(o) * 100)}`, f4(v)]),
    ];
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows)
    lines.push(
      r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
        .join('  ')
        .trimEnd(),
    );
  const { coverage, thresholds } = report.metrics;
  if (coverage) {
    lines.push(
      `threshold ${coverage.threshold}: coverage ${f4(coverage.coverage)}, accuracy ${f4(coverage.accuracy)} (unknown counted wrong), accuracy of the answered ${f4(coverage.answeredAccuracy)}`,
    );
  }
  if (thresholds) {
    const t = [
      ['threshold', 'coverage', 'accuracy', 'answered accuracy'],
      ...thresholds.map((p) => [String(p.threshold), f4(p.coverage), f4(p.accuracy), f4(p.answeredAccuracy)]),
    ];
    const w = t[0].map((_, i) => Math.max(...t.map((r) => r[i].length)));
    for (const r of t)
      lines.push(r.map((cell, i) => (i === 0 ? cell.padEnd(w[i]) : cell.padStart(w[i]))).join('  '));
  }
  if (reportDir) lines.push(`report: ${reportDir}`);
  return `${lines.join('\n')}\n`;
}

/** `--thresholds`: a comma-separated list of probabilities, or the default list without one. */
function thresholdsFlag(flags: Flags): number[] | undefined {
  const value = flags.thresholds;
  if (value === undefined) return undefined;
  if (value === true) return [...DEFAULT_THRESHOLDS];
  const words = String(value).split(',');
  return words.map((word) => {
    const p = /^(\d+(\.\d*)?|\.\d+)$/.test(word.trim()) ? Number(word) : NaN;
    if (!(p >= 0 && p <= 1))
      throw new UsageError(
        `Expected probabilities >= 0 and <= 1, comma-separated, for \`--thresholds\` but received ${JSON.stringify(String(value))}`,
      );
    return p;
  });
}

async function runEval(dataset: string, flags: Flags): Promise<number> {
  const modelDir = await modelDirFlag(flags);
  const out = stringFlag(flags, 'out');
  const topK = intFlag(flags, 'topK') ?? 5;
  const aggregate = choiceFlag(flags, 'aggregate', 'aggregate', AGGREGATES) ?? 'mean';
  const threshold = probabilityFlag(flags, 'threshold');
  const thresholds = thresholdsFlag(flags);
  const options = pipelineOptionsFrom(flags);
  // A user's folder or a file as --out is refused before the model is read (the task claims it later).
  if (out) await replaceableState(out, OUTPUT_DIRS.report);
  const { evaluate, readModelInfo, resolveClassifierOptions } = await import('../tasks/index.js');
  // Once, here, over the model's own options: bad flag values fail before any work.
  const resolved = resolveClassifierOptions(options, await readModelInfo(modelDir));

  const interrupt = handleInterrupts();
  const renderer = await withMetrics(flags, createRenderer({ quiet: flags.quiet === true }));
  let result;
  try {
    result = await evaluate(dataset, modelDir, {
      ...resolved,
      out,
      force: flags.force === true,
      topK,
      aggregate,
      ignoreUnknownLabels: flags.ignoreUnknownLabels === true,
      ...(threshold !== undefined ? { threshold } : {}),
      ...(thresholds ? { thresholds } : {}),
      signal: interrupt.signal,
      onProgress: (event) => renderer.update(event),
      onPrepare: (message) => renderer.phase(message),
    });
  } catch (error) {
    if (interrupt.signal.aborted && isAbort(error)) return 130;
    throw error;
  } finally {
    renderer.done();
    await renderer.close();
    interrupt.dispose();
  }
  const { report } = result;
  if (report.failures.length > 0) {
    process.stderr.write(
      `framewise: warning: ${report.failures.length} video${report.failures.length > 1 ? 's' : ''} failed and ${report.failures.length > 1 ? 'are' : 'is'} excluded from the metrics:\n`,
    );
    for (const f of report.failures)
      process.stderr.write(`  ${f.path}: ${f.code}: ${f.message.split('\n')[0]}\n`);
  }
  if (report.ignored.length > 0 && flags.quiet !== true) {
    process.stderr.write(
      `framewise: ${report.ignored.length} video${report.ignored.length > 1 ? 's' : ''} with labels the model does not know left out\n`,
    );
  }
  process.stdout.write(
    flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatEvalTable(report, out),
  );
  return report.failures.length > 0 ? 1 : 0;
}
