/**
 * `framewise embed <inputs...> --out <file.jsonl | dir>`: clip embeddings for every video,
 * as JSONL (one line per video) or as one float32 [clips, T, D] `.npy` per video plus an
 * `index.jsonl`.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import { backboneFlags, inputList, pipelineOptionsFrom, samplingFlags, stringFlag, type Flags } from './common.js';
import { runRecords } from './progress.js';

/** Shortest text that reads back as the same float32. */
export function f32(x: number): number {
  return Number.parseFloat(x.toPrecision(9));
}

function vector(values: Float32Array): number[] {
  const out = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32(values[i]);
  return out;
}

export function register(cli: CAC): void {
  const command = cli
    .command('embed <...inputs>', 'Clip embeddings of videos (files, folders, manifests) as JSONL or .npy')
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
  const { resolveOptions } = await import('../tasks/options.js');
  const { discoverInputs } = await import('../engines/index.js');
  const { openJsonl, isDone } = await import('../output/sinks.js');
  resolveOptions(options); // bad flag values fail before any work
  // The output and the inputs are checked before the backbone loads.
  let indexPath = out;
  if (format === 'npy') {
    try {
      const info = await stat(out);
      if (!info.isDirectory()) throw new UsageError(`\`--out\` ${out} is not a folder (needed for --format npy)`);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      await mkdir(out, { recursive: true }).catch((e: Error) => {
        throw new UsageError(`Cannot create the output folder ${out}: ${e.message}`);
      });
    }
    indexPath = join(out, 'index.jsonl');
  }
  const entries = await discoverInputs(inputs);
  const { sink, resume: state } = await openJsonl(indexPath, { resume, force });

  const { createPipelineInternal, toEmbedResult } = await import('../tasks/embed.js');
  const { isErrorRecord } = await import('../embedding/local-runner.js');
  const { encodeNpy, npyNameFor, writeFileAtomic } = await import('../output/npy.js');
  const frameEmbeddings = flags.frameEmbeddings === true;
  return runRecords(
    flags,
    sink,
    (signal) => createPipelineInternal({ ...options, signal }),
    async (pipeline, signal, tracker) => {
      for await (const [entry, outcome] of pipeline.run(entries, { signal, tracker, skip: (p) => isDone(state.done, p) })) {
        if (isErrorRecord(outcome)) {
          await sink.writeLine(JSON.stringify(outcome));
          continue;
        }
        const result = toEmbedResult(entry, outcome, pipeline.backboneId);
        if (format === 'npy') {
          const name = npyNameFor(result.path);
          await writeFileAtomic(join(out, name), encodeNpy(result.embeddings, [result.clips.length, result.frameCount, result.dim]));
          await sink.writeLine(
            JSON.stringify({
              path: result.path,
              ...(result.label !== undefined ? { label: result.label } : {}),
              npy: name,
              shape: [result.clips.length, result.frameCount, result.dim],
              backbone: result.backbone,
              ...(result.backend ? { backend: result.backend } : {}),
              dim: result.dim,
              clips: result.clips.map((c) => ({ start: c.start, end: c.end, timestamps: c.timestamps, mask: c.mask })),
            }),
          );
        } else {
          await sink.writeLine(
            JSON.stringify({
              path: result.path,
              ...(result.label !== undefined ? { label: result.label } : {}),
              backbone: result.backbone,
              ...(result.backend ? { backend: result.backend } : {}),
              dim: result.dim,
              clips: result.clips.map((c) => ({
                start: c.start,
                end: c.end,
                timestamps: c.timestamps,
                mask: c.mask,
                embedding: vector(c.embedding),
                ...(frameEmbeddings
                  ? { frames: Array.from({ length: result.frameCount }, (_, t) => vector(c.frames.subarray(t * result.dim, (t + 1) * result.dim))) }
                  : {}),
              })),
            }),
          );
        }
      }
    },
  );
}
