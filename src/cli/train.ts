/**
 * `framewise train <dataset> --out <modelDir>`: embeds a labelled dataset (cached), trains a
 * temporal head, writes the model folder, and prints a summary.
 */
import type { CAC } from 'cac';
import type { TrainOptions } from '../tasks/index.js';
import { UsageError } from '../errors.js';
import { HEADS } from '../tasks/options.js';
import { backboneFlags, choicesHelp, intFlag, isAbort, pipelineOptionsFrom, samplingFlags, stringFlag, type Flags } from './common.js';
import { handleInterrupts } from './interrupt.js';
import { createRenderer, withMetrics } from './progress.js';

export function register(cli: CAC): void {
  const command = cli
    .command('train <dataset>', 'Train a temporal head on a folder-per-class tree or a manifest')
    .option('--out <dir>', 'Model folder to write')
    .option('--head <head>', `${choicesHelp(HEADS)} (default: lstm)`)
    .option('--mode <mode>', 'clip (one label per clip) | frame (one label per frame) (default: clip)')
    .option('--epochs <n>', 'Most epochs; early stopping keeps the best (default: 100)')
    .option('--seed <n>', 'Seed for weights, split and shuffling (default: 42)')
    .option('--val-split <f>', 'Fraction of each class\'s videos for validation (default: 0.2)')
    .option('--units <n>', 'Recurrent units (default: 256)')
    .option('--learning-rate <lr>', 'Adam learning rate (default: 0.001)')
    .option('--patience <n>', 'Early-stopping patience in epochs (default: 10)')
    .option('--augment <n>', 'Clip mode, uniform sampling: extra clips per video, drawn from 1.5x the frames in order (default: 8, 0 = off)')
    .option('--force', 'Replace an existing model folder (only one framewise wrote, or an empty folder)');
  samplingFlags(command, 'explicit');
  backboneFlags(command);
  command
    .example('framewise train data/ --out model/ --head lstm --epochs 50')
    .example('framewise train segments.jsonl --out tagger/ --mode frame --sampling window:2/1')
    .action((dataset: unknown, flags: Flags) => runTrain(String(dataset), flags));
}

function numberFlag(flags: Flags, name: string, flag: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`Expected a number for \`--${flag}\` but received ${JSON.stringify(value)}`);
  return n;
}

async function runTrain(dataset: string, flags: Flags): Promise<number> {
  const out = stringFlag(flags, 'out');
  if (!out) throw new UsageError('`--out` is required: the model folder to write');
  const options = pipelineOptionsFrom(flags);
  const head = stringFlag(flags, 'head');
  const mode = stringFlag(flags, 'mode');
  const units = intFlag(flags, 'units');
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
      augment: intFlag(flags, 'augment', 0),
      ...(units ? { headOptions: { units } } : {}),
      signal: interrupt.signal,
      onProgress: (event) => renderer.update(event),
      onPrepare: (message) => renderer.phase(message),
      onEpoch: (e) => {
        if (quiet) return;
        renderer.done();
        const val = e.valLoss === null ? '' : `  val_loss ${e.valLoss.toFixed(4)}  val_acc ${(e.valAcc ?? 0).toFixed(3)}`;
        const time = e.seconds === undefined ? '' : `  ${e.seconds.toFixed(1)} s  ETA ${Math.round(e.etaSeconds ?? 0)} s (max ${e.epochs} epochs)`;
        process.stderr.write(`epoch ${String(e.epoch).padStart(3)}  loss ${e.loss.toFixed(4)}  acc ${e.acc.toFixed(3)}${val}${time}\n`);
      },
      onWarning: (message) => process.stderr.write(`framewise: warning: ${message}\n`),
    });
    renderer.done();
    const m = result.metrics;
    const lines = [
      `Trained a ${result.head} head (${result.mode} mode) on ${result.videos} videos, ${result.clips} clips` +
        `${result.trainingClips !== result.clips ? ` (${result.trainingClips} training clips with augmentation)` : ''}.`,
      `${result.mode === 'clip' ? 'Clips' : 'Frames'} per class: ${Object.entries(result.counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([label, n]) => `${label} ${n}`)
        .join(', ')}`,
    ];
    if (m) {
      lines.push(
        `Final (best epoch ${m.bestEpoch} of ${m.epochs}): train loss ${m.loss.toFixed(4)}, acc ${m.acc.toFixed(3)}` +
          (m.valLoss === null ? ', no validation split' : `; val loss ${m.valLoss.toFixed(4)}, acc ${(m.valAcc ?? 0).toFixed(3)}`),
      );
    }
    if (result.failures.length > 0) {
      lines.push(`${result.failures.length} video(s) could not be used:`);
      for (const f of result.failures) lines.push(`  ${f.path}: ${f.error.code} ${f.error.message}`);
    }
    lines.push(`Model written to ${result.dir}`);
    process.stdout.write(`${lines.join('\n')}\n`);
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
