/**
 * `framewise train <dataset> --out <modelDir>`: embeds a labelled dataset (cached), trains a
 * temporal head, writes the model folder, and prints a summary.
 */
import type { CAC } from 'cac';
import type { TrainOptions, TrainResult } from '../tasks/index.js';
import type { EpochProgress, TrainMetrics } from '../model/types.js';
import { UsageError } from '../errors.js';
import {
  CLASS_WEIGHTS,
  DEFAULT_LR_SCHEDULE,
  DEFAULT_MIN_DELTA,
  HEADS,
  LR_SCHEDULES,
  MONITORS,
  stopMessage,
} from '../tasks/options.js';
import {
  backboneFlags,
  intFlag,
  choiceFlag,
  isAbort,
  pipelineOptionsFrom,
  samplingFlags,
  stringFlag,
  type Flags,
} from './common.js';
import { handleInterrupts } from './interrupt.js';
import { createRenderer, withMetrics } from './progress.js';

export function register(cli: CAC): void {
  const command = cli
    .command('train <dataset>', 'Train a temporal head on a folder-per-class tree or a manifest')
    .option('--out <dir>', 'Model folder to write')
    .option('--head <head>', `${HEADS.help()} (default: ${HEADS.default})`)
    .option('--mode <mode>', 'clip (one label per clip) | frame (one label per frame) (default: clip)')
    .option('--epochs <n>', 'Most epochs; early stopping keeps the best (default: 100)')
    .option('--seed <n>', 'Seed for weights, split and shuffling (default: 42)')
    .option('--val-split <f>', "Fraction of each class's videos for validation (default: 0.2)")
    .option('--units <n>', 'Recurrent units (default: 256)')
    .option('--learning-rate <lr>', 'Adam learning rate (default: 0.001)')
    .option('--patience <n>', 'Early stopping: epochs without an improvement before stopping (default: 10)')
    .option('--monitor <m>', `Early stopping watches ${MONITORS.join(' | ')} (default: val_loss)`)
    .option(
      '--min-delta <d>',
      `Early stopping: an improvement smaller than this does not count (default: ${DEFAULT_MIN_DELTA})`,
    )
    .option(
      '--lr-schedule <s>',
      `Learning rate: ${LR_SCHEDULES.join(' | ')} (default: ${DEFAULT_LR_SCHEDULE})`,
    )
    .option(
      '--batch-size <n>',
      "Training: clips per gradient step of the head (default: 16; not --batch, the backbone's clips per call)",
    )
    .option(
      '--class-weight <w>',
      `Training loss weights: ${CLASS_WEIGHTS.join(' | ')} (n / (classes x n_class)) (default: none)`,
    )
    .option(
      '--ensemble <n>',
      'Train N heads (seeds seed..seed+N-1) into one model folder; classify, eval and export average them (default: 1)',
    )
    .option(
      '--augment <n>',
      'Clip mode, uniform sampling: extra clips per video, drawn from 1.5x the frames in order (default: 8, 0 = off)',
    )
    .option(
      '--resume',
      'Go on from the checkpoint in --out (an interrupted run), with the same dataset and settings',
    )
    .option(
      '--force',
      'Start over: replace an existing model folder (only one framewise wrote, or an empty folder)',
    );
  samplingFlags(command, 'explicit');
  backboneFlags(command);
  command
    .example('framewise train data/ --out model/ --head lstm --epochs 50')
    .example(
      'framewise train data/ --out model/ --resume        # after Ctrl-C: go on from the last whole epoch',
    )
    .example('framewise train data/ --out ensemble/ --ensemble 5 --class-weight balanced')
    .example('framewise train segments.jsonl --out tagger/ --mode frame --sampling window:2/1')
    .action((dataset: unknown, flags: Flags) => runTrain(String(dataset), flags));
}

function numberFlag(flags: Flags, name: string, flag: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n))
    throw new UsageError(`Expected a number for \`--${flag}\` but received ${JSON.stringify(value)}`);
  return n;
}

async function runTrain(dataset: string, flags: Flags): Promise<number> {
  const out = stringFlag(flags, 'out');
  if (!out) throw new UsageError('`--out` is required: the model folder to write');
  const options = pipelineOptionsFrom(flags);
  const head = stringFlag(flags, 'head');
  const mode = stringFlag(flags, 'mode');
  const units = intFlag(flags, 'units');
  const classWeight = choiceFlag(flags, 'classWeight', 'class-weight', CLASS_WEIGHTS);
  const quiet = flags.quiet === true;
  const interrupt = handleInterrupts();
  const renderer = await withMetrics(flags, createRenderer({ quiet }));
  const { train } = await import('../tasks/index.js');
  try {
    const result = await train(dataset, {
      ...options,
      out,
      force: flags.force === true,
      head: head as TrainOptions['head'],
      mode: mode as 'clip' | undefined,
      epochs: intFlag(flags, 'epochs'),
      seed: intFlag(flags, 'seed', 0),
      valSplit: numberFlag(flags, 'valSplit', 'val-split'),
      learningRate: numberFlag(flags, 'learningRate', 'learning-rate'),
      patience: intFlag(flags, 'patience', 0),
      monitor: choiceFlag(flags, 'monitor', 'monitor', MONITORS),
      minDelta: numberFlag(flags, 'minDelta', 'min-delta'),
      lrSchedule: choiceFlag(flags, 'lrSchedule', 'lr-schedule', LR_SCHEDULES),
      batchSize: intFlag(flags, 'batchSize'),
      classWeight: classWeight === 'none' ? undefined : classWeight,
      ensemble: intFlag(flags, 'ensemble'),
      resume: flags.resume === true,
      augment: intFlag(flags, 'augment', 0),
      ...(units ? { headOptions: { units } } : {}),
      signal: interrupt.signal,
      onProgress: (event) => renderer.update(event),
      onPrepare: (message) => renderer.phase(message),
      onEpoch: (e) => {
        if (quiet) return;
        renderer.done();
        process.stderr.write(epochLine(e));
      },
      onWarning: (message) => process.stderr.write(`framewise: warning: ${message}\n`),
    });
    renderer.done();
    process.stdout.write(`${resultLines(result).join('\n')}\n`);
    return result.failures.length > 0 ? 1 : 0;
  } catch (error) {
    renderer.done();
    if (interrupt.signal.aborted && isAbort(error)) return 130;
    throw error;
  } finally {
    await renderer.close();
    interrupt.dispose();
  }
}

/** The line printed after each epoch (stderr): its figures, learning rate, time and ETA. */
function epochLine(e: EpochProgress): string {
  // Enough digits that a loss creeping in its 5th decimal shows (a fixed 4 printed 0.0000).
  const val =
    e.valLoss === null ? '' : `  val_loss ${lossText(e.valLoss)}  val_acc ${(e.valAcc ?? 0).toFixed(3)}`;
  const time =
    e.seconds === undefined
      ? ''
      : `  ${e.seconds.toFixed(1)} s  ETA ${Math.round(e.etaSeconds ?? 0)} s (max ${e.epochs} epochs)`;
  const member = e.member === undefined ? '' : `member ${e.member}  `;
  const lr = e.lr === undefined ? '' : `  lr ${Number(e.lr.toPrecision(3))}`;
  return `${member}epoch ${String(e.epoch).padStart(3)}  loss ${lossText(e.loss)}  acc ${e.acc.toFixed(3)}${val}${lr}${time}\n`;
}

/** The report printed when training ends (stdout): the data trained on, each head's figures, the failed videos and the folder. */
function resultLines(result: TrainResult): string[] {
  const m = result.metrics;
  const lines = [
    `Trained a ${result.head} head (${result.mode} mode) on ${result.videos} videos, ${result.clips} clips` +
      `${result.trainingClips !== result.clips ? ` (${result.trainingClips} training clips with augmentation)` : ''}.`,
    `${result.mode === 'clip' ? 'Clips' : 'Frames'} per class: ${Object.entries(result.counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([label, n]) => `${label} ${n}`)
      .join(', ')}`,
  ];
  if (result.resumedAt > 0) lines.push(`Resumed after epoch ${result.resumedAt}.`);
  if (m) lines.push(...summaryLines(m));
  if (result.failures.length > 0) {
    lines.push(`${result.failures.length} video(s) could not be used:`);
    for (const f of result.failures) lines.push(`  ${f.path}: ${f.error.code} ${f.error.message}`);
  }
  lines.push(`Model written to ${result.dir}`);
  return lines;
}

/** A loss with 4 decimals, or 3 significant digits in exponent form when it is below 0.001. */
function lossText(v: number): string {
  return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toFixed(4);
}

/** The end lines: for each head, why it stopped and its kept epoch; for an ensemble, the averaged figures too. */
function summaryLines(m: TrainMetrics): string[] {
  const figures = (x: TrainMetrics): string =>
    `train loss ${lossText(x.loss)}, acc ${x.acc.toFixed(3)}${x.valLoss === null ? ', no validation split' : `; val loss ${lossText(x.valLoss)}, acc ${(x.valAcc ?? 0).toFixed(3)}`}`;
  const head = (x: TrainMetrics, prefix: string): string =>
    `${prefix}${x.stop ? `${stopMessage(x.stop)}. ` : ''}Kept epoch ${x.bestEpoch} of ${x.epochs}: ${figures(x)}`;
  if (!m.members) return [head(m, '')];
  return [
    ...m.members.map((x, k) => head(x, `Member ${k + 1} (seed ${x.seed}): `)),
    `Ensemble of ${m.members.length} (probabilities averaged): ${figures(m)}`,
  ];
}
