/**
 * `framewise embed <inputs...> --out <file.jsonl | dir>`: clip embeddings for every video,
 * as JSONL (one line per video) or as one float32 [clips, T, D] `.npy` per video plus an
 * `index.jsonl`.
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import { chooseFormat, formatsHelp, openWriter } from '../output/formats.js';
import {
  backboneFlags,
  inputList,
  pipelineOptionsFrom,
  samplingFlags,
  stringFlag,
  type Flags,
} from './common.js';
import { runRecords } from './progress.js';

export function register(cli: CAC): void {
  const command = cli
    .command(
      'embed <...inputs>',
      'Clip embeddings of videos (files, folders, manifests, URLs) as JSONL or .npy',
    )
    .option('--out [path]', 'Output: a .jsonl file, - for stdout, or a folder with --format npy')
    .option('--format <format>', `${formatsHelp('embed')} (default: jsonl)`)
    .option('--frame-embeddings', 'Also write the per-frame embeddings (JSONL)')
    .option('--resume', 'Continue an existing output, skipping videos already in it')
    .option('--force', 'Overwrite an existing output');
  samplingFlags(command, 'explicit');
  backboneFlags(command);
  command
    .example('framewise embed videos/ --out embeddings.jsonl')
    .example('framewise embed videos/ --out emb/ --format npy --sampling window:2/1')
    .action((inputs: unknown, flags: Flags) => runEmbed(inputList(inputs), flags));
}

async function runEmbed(inputs: string[], flags: Flags): Promise<number> {
  const out = stringFlag(flags, 'out');
  if (!out)
    throw new UsageError('`--out` is required: a .jsonl file, - for stdout, or a folder with --format npy');
  const format = chooseFormat('embed', out, stringFlag(flags, 'format'));
  const resume = flags.resume === true;
  const force = flags.force === true;
  const options = pipelineOptionsFrom(flags);

  // Heavy modules load only now, so `--help` stays instant.
  const { createPipeline, discoverInputs, resolveOptions } = await import('../tasks/index.js');
  const { isDone } = await import('../output/sinks.js');
  const resolved = resolveOptions(options); // once, here: bad flag values fail before any work
  const entries = await discoverInputs(inputs);
  const frames = flags.frameEmbeddings === true;
  // What shapes a record; --resume with other values is refused.
  const settings = {
    command: 'embed',
    format,
    frameEmbeddings: frames,
    backbone: resolved.backbone,
    frames: resolved.frames,
    size: resolved.size,
    fit: resolved.fit,
    sampling: resolved.sampling,
    ...(resolved.seek === 'keyframe' ? { seek: 'keyframe' } : {}),
  };
  // The output is checked and locked before the backbone loads; it is opened with the first record.
  const open = { resume, force, settings, inputs: [...inputs, ...entries.map((e) => e.path)] };
  const writer = await openWriter('embed', format, out, open);
  return runRecords(
    flags,
    writer,
    (signal, onPrepare) => createPipeline({ ...resolved, signal, onPrepare }),
    async (pipeline, signal, onProgress) => {
      for await (const result of pipeline.embed(entries, {
        signal,
        onProgress,
        skip: (entry) => isDone(writer.resume.done, entry),
      })) {
        await writer.write(result, { frameEmbeddings: frames });
      }
    },
  );
}
