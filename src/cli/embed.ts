/**
 * `framewise embed <inputs...> --out <file.jsonl | dir>`: clip embeddings for every video,
 * as JSONL (one line per video) or as one float32 [clips, T, D] `.npy` per video plus an
 * `index.jsonl`.
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import type { LineSink, NpySink, ResumeState } from '../output/sinks.js';
import { backboneFlags, inputList, pipelineOptionsFrom, samplingFlags, stringFlag, type Flags } from './common.js';
import { runRecords } from './progress.js';

export function register(cli: CAC): void {
  const command = cli
    .command('embed <...inputs>', 'Clip embeddings of videos (files, folders, manifests, URLs) as JSONL or .npy')
    .option('--out [path]', 'Output: a .jsonl file, - for stdout, or a folder with --format npy')
    .option('--format <format>', 'jsonl | npy (default: jsonl)')
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
  if (!out) throw new UsageError('`--out` is required: a .jsonl file, - for stdout, or a folder with --format npy');
  const format = stringFlag(flags, 'format') ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'npy') throw new UsageError(`Expected 'jsonl' or 'npy' for \`--format\` but received '${format}'`);
  if (format === 'npy' && out === '-') throw new UsageError('`--format npy` writes a folder; `--out -` is not possible');
  const resume = flags.resume === true;
  const force = flags.force === true;
  const options = pipelineOptionsFrom(flags);

  // Heavy modules load only now, so `--help` stays instant.
  const { createPipeline, discoverInputs, resolveOptions } = await import('../tasks/index.js');
  const { openJsonl, openNpy, isDone } = await import('../output/sinks.js');
  const { embedRecord, npyFile, npyIndexRecord } = await import('../output/records.js');
  const resolved = resolveOptions(options); // bad flag values fail before any work
  const entries = await discoverInputs(inputs);
  const frames = flags.frameEmbeddings === true;
  // What shapes a record; --resume with other values is refused.
  const settings = { command: 'embed', format, frameEmbeddings: frames, backbone: resolved.backbone, frames: resolved.frames, size: resolved.size, fit: resolved.fit, sampling: resolved.sampling, ...(resolved.seek === 'keyframe' ? { seek: 'keyframe' } : {}) };
  // The output is checked and locked before the backbone loads; it is opened with the first record.
  const open = { resume, force, settings, inputs: [...inputs, ...entries.map((e) => e.path)] };
  const { sink, resume: state }: { sink: LineSink & Partial<NpySink>; resume: ResumeState } = format === 'npy' ? await openNpy(out, open) : await openJsonl(out, open);
  return runRecords(
    flags,
    sink,
    (signal, onPrepare) => createPipeline({ ...options, signal, onPrepare }),
    async (pipeline, signal, onProgress) => {
      for await (const result of pipeline.embed(entries, { signal, onProgress, skip: (entry) => isDone(state.done, entry) })) {
        if (sink.writeFile && !('error' in result)) {
          const npy = npyFile(result);
          await sink.writeFile(npy.name, npy.bytes);
          await sink.writeLine(JSON.stringify(npyIndexRecord(result, npy.name)));
        } else {
          await sink.writeLine(JSON.stringify(format === 'npy' ? npyIndexRecord(result) : embedRecord(result, { frames })));
        }
      }
    },
  );
}
