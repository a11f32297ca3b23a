/**
 * `framewise classify <inputs...> --model <modelDir>`: one prediction per video, as JSONL
 * (default, stdout when no `--out`) or CSV (`--out *.csv`, one row per video). Frames, size
 * and sampling come from the model's framewise.json unless given.
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import { backboneFlags, modelDirFlag, inputList, intFlag, pipelineOptionsFrom, samplingFlags, stringFlag, type Flags } from './common.js';
import { runRecords } from './progress.js';

const round = (x: number): number => Number.parseFloat(x.toPrecision(6));

export const CSV_HEADER = ['path', 'label', 'score', 'topk', 'error_code', 'error_message'];

export function register(cli: CAC): void {
  const command = cli
    .command('classify <...inputs>', 'Label videos (files, folders, manifests) with a trained model')
    .option('--model <dir>', 'Model folder (model.json, weights, framewise.json)')
    .option('--out [path]', 'results.jsonl, results.csv, or - for stdout (default: -)')
    .option('--top-k <k>', 'Labels in topk (default: 5)')
    .option('--aggregate <how>', 'Clip scores to a video score: mean | max (default: mean)')
    .option('--probs', 'Also write the video-level probabilities of every label (JSONL)')
    .option('--resume', 'Continue an existing output, skipping videos already in it')
    .option('--force', 'Overwrite an existing output');
  samplingFlags(command, 'model');
  backboneFlags(command);
  command
    .example('framewise classify samples/ --model samples/model')
    .example('framewise classify videos/ --model model/ --out results.csv --aggregate max')
    .action((inputs: unknown, flags: Flags) => runClassify(inputList(inputs), flags));
}

async function runClassify(inputs: string[], flags: Flags): Promise<number> {
  const modelDir = await modelDirFlag(flags);
  const out = stringFlag(flags, 'out') ?? '-';
  const csv = out.toLowerCase().endsWith('.csv');
  const topK = intFlag(flags, 'topK') ?? 5;
  const aggregate = stringFlag(flags, 'aggregate') ?? 'mean';
  if (aggregate !== 'mean' && aggregate !== 'max') throw new UsageError(`Expected 'mean' or 'max' for \`--aggregate\` but received '${aggregate}'`);
  const options = pipelineOptionsFrom(flags);
  const probsWanted = flags.probs === true;

  const { resolveOptions } = await import('../tasks/options.js');
  const { discoverInputs } = await import('../engines/index.js');
  const { openCsv, openJsonl, csvRow, isDone } = await import('../output/sinks.js');
  resolveOptions(options);
  const entries = await discoverInputs(inputs);
  const resume = flags.resume === true;
  const force = flags.force === true;
  const { sink, resume: state } = csv ? await openCsv(out, CSV_HEADER, { resume, force }) : await openJsonl(out, { resume, force });

  const { loadClassifier } = await import('../tasks/classify.js');
  const { isErrorRecord } = await import('../embedding/local-runner.js');
  return runRecords(
    flags,
    sink,
    (signal) => loadClassifier(modelDir, { ...options, signal }),
    async (classifier, signal, tracker) => {
      for await (const [, r] of classifier.classifyEntries(entries, {
        signal,
        tracker,
        topK,
        aggregate,
        skip: (p) => isDone(state.done, p),
      })) {
        if (isErrorRecord(r)) {
          await sink.writeLine(csv ? csvRow([r.path, '', '', '', r.error.code, r.error.message]) : JSON.stringify(r));
          continue;
        }
        if (csv) {
          await sink.writeLine(csvRow([r.path, r.label, round(r.score), r.topk.map((t) => `${t.label}:${round(t.score)}`).join(';'), '', '']));
          continue;
        }
        await sink.writeLine(
          JSON.stringify({
            path: r.path,
            label: r.label,
            score: round(r.score),
            topk: r.topk.map((t) => ({ label: t.label, score: round(t.score) })),
            ...(probsWanted ? { probs: Object.fromEntries(classifier.labels.map((l, i) => [l, round(r.probs[i])])) } : {}),
            clips: r.clips.map((c) => ({ start: c.start, end: c.end, label: c.label, score: round(c.score) })),
            ...(r.frames ? { frames: r.frames.map((f) => ({ t: f.t, label: f.label, score: round(f.score) })) } : {}),
          }),
        );
      }
    },
  );
}
