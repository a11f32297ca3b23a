/**
 * `framewise classify <inputs...> --model <modelDir>`: one prediction per video, as JSONL
 * (default, stdout when no `--out`) or CSV (`--out *.csv`, one row per video; per segment for
 * a frame model), or a frame model's segments as WebVTT or SRT. Frames, size and sampling
 * come from the model's framewise.json unless given.
 */
import type { CAC } from 'cac';
import { chooseFormat, formatsHelp, openWriter } from '../output/formats.js';
import { AGGREGATES } from '../tasks/options.js';
import {
  backboneFlags,
  choiceFlag,
  modelDirFlag,
  inputList,
  intFlag,
  pipelineOptionsFrom,
  probabilityFlag,
  samplingFlags,
  secondsFlag,
  stringFlag,
  type Flags,
} from './common.js';
import { runRecords } from './progress.js';

export function register(cli: CAC): void {
  const command = cli
    .command('classify <...inputs>', 'Label videos (files, folders, manifests, URLs) with a trained model')
    .option('--model <dir>', 'Model folder (model.json, weights, framewise.json)')
    .option(
      '--out [path]',
      'results.jsonl, results.csv, video.vtt, a folder (vtt or srt of several videos), or - for stdout (default: -)',
    )
    .option('--format <format>', `${formatsHelp('classify')} (default: by --out's extension, else jsonl)`)
    .option('--top-k <k>', 'Labels in topk (default: 5)')
    .option('--aggregate <how>', `Clip scores to a video score: ${AGGREGATES.join(' | ')} (default: mean)`)
    .option('--probs', 'Also write the video-level probabilities of every label (JSONL)')
    .option(
      '--threshold <p>',
      "A video (clip model) or frame (frame model) whose top score is below p is labelled 'unknown' (default: 0)",
    )
    .option(
      '--min-segment <seconds>',
      'Frame models: merge segments shorter than this into their longer neighbour (default: none)',
    )
    .option('--resume', 'Continue an existing output, skipping videos already in it')
    .option('--force', 'Overwrite an existing output');
  samplingFlags(command, 'model');
  backboneFlags(command);
  command
    .example('framewise classify samples/ --model samples/model')
    .example('framewise classify videos/ --model model/ --out results.csv --aggregate max')
    .example('framewise classify video.mp4 --model tagger/ --format vtt --out video.vtt --min-segment 1')
    .action((inputs: unknown, flags: Flags) => runClassify(inputList(inputs), flags));
}

async function runClassify(inputs: string[], flags: Flags): Promise<number> {
  const modelDir = await modelDirFlag(flags);
  const out = stringFlag(flags, 'out') ?? '-';
  const format = chooseFormat('classify', out, stringFlag(flags, 'format'));
  const topK = intFlag(flags, 'topK') ?? 5;
  const aggregate = choiceFlag(flags, 'aggregate', 'aggregate', AGGREGATES) ?? 'mean';
  const options = pipelineOptionsFrom(flags);
  const probsWanted = flags.probs === true;
  const threshold = probabilityFlag(flags, 'threshold') ?? 0;
  const minSegment = secondsFlag(flags, 'minSegment') ?? 0;

  const { discoverInputs, loadClassifier, modelId, readModelInfo, resolveClassifierOptions } = await import(
    '../tasks/index.js'
  );
  const { isDone } = await import('../output/sinks.js');
  const info = await readModelInfo(modelDir);
  // Once, here, over the model's own options: bad flag values fail before any work.
  const resolved = resolveClassifierOptions(options, info);
  const entries = await discoverInputs(inputs);
  const resume = flags.resume === true;
  const force = flags.force === true;
  // What shapes a record: the model (by the id eval reports give it) and what overrides it; --resume with other values is refused.
  const model = await modelId(modelDir, info.labels);
  const mode = info.mode === 'frame' ? 'frame' : 'clip';
  const shape = { ...(threshold > 0 ? { threshold } : {}), ...(minSegment > 0 ? { minSegment } : {}) };
  const settings = {
    command: 'classify',
    model,
    topK,
    aggregate,
    probs: probsWanted,
    ...shape,
    backbone: options.backbone,
    frames: options.frames,
    size: options.size,
    fit: options.fit,
    sampling: options.sampling,
    ...(options.seek === 'keyframe' ? { seek: 'keyframe' } : {}),
  };
  const open = {
    resume,
    force,
    settings,
    inputs: [...inputs, ...entries.map((e) => e.path)],
    mode,
    videos: entries.length,
  } as const;
  const writer = await openWriter('classify', format, out, open);
  return runRecords(
    flags,
    writer,
    (signal, onPrepare) => loadClassifier(modelDir, { ...resolved, signal, onPrepare }),
    async (classifier, signal, onProgress) => {
      for await (const r of classifier.classify(entries, {
        signal,
        onProgress,
        topK,
        aggregate,
        threshold,
        minSegment,
        skip: (entry) => isDone(writer.resume.done, entry),
      })) {
        await writer.write(r, { labels: classifier.labels, probs: probsWanted });
      }
    },
  );
}
