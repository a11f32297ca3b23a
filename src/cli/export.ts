/**
 * `framewise export <modelDir> --out <file.onnx | dir> [--format onnx|tfjs] [--frames N] [--no-mask] [--force]`:
 * the whole clip model (backbone + head) for use outside framewise. Input `frames`: uint8
 * [N, T, S, S, 3] RGB 0..255 (normalisation inside), and in the ONNX export `mask`: bool
 * [N, T] (true: a real frame) unless `--no-mask`, which, like the tfjs export, takes all-zero
 * frames as padding; output `probs`: [N, classes] in clip mode, [N, T, classes] in frame mode.
 * `onnx` is one .onnx file; `tfjs` is a tfjs LayersModel folder (`exportEndToEnd`).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import { OUTPUT_DIRS, saysOwn } from '../output/index.js';
import { EXPORT_FORMATS } from '../tasks/options.js';
import { choiceFlag, intFlag, modelDirFlag, stringFlag, type Flags } from './common.js';

export function register(cli: CAC): void {
  cli
    .command('export <modelDir>', 'Export the whole clip model (backbone + head) as ONNX or as a tfjs model')
    .option('--out <path>', 'A .onnx file (format onnx) or a folder (format tfjs)')
    .option('--format <format>', `${EXPORT_FORMATS.join(' | ')} (default: onnx for a .onnx --out, else tfjs)`)
    .option('--frames <n>', 'Fix T, the frames per clip, in the input shape (default: dynamic)')
    .option('--no-mask', 'ONNX: no `mask` input; all-zero frames count as padding (as in the tfjs export)')
    .option('--force', 'Replace an existing output that framewise wrote')
    .example('framewise export samples/model --out arrow.onnx')
    .action((modelDir: unknown, flags: Flags) => runExport(String(modelDir), flags));
}

async function exists(path: string): Promise<'file' | 'dir' | undefined> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'file';
  } catch {
    return undefined;
  }
}

async function runExport(modelDir: string, flags: Flags): Promise<number> {
  const out = stringFlag(flags, 'out');
  if (!out) throw new UsageError('`--out` is required: a .onnx file or a folder');
  const format =
    choiceFlag(flags, 'format', 'format', EXPORT_FORMATS) ?? (/\.onnx$/i.test(out) ? 'onnx' : 'tfjs');
  const frames = intFlag(flags, 'frames');
  const mask = flags.mask !== false;
  if (format === 'tfjs' && /\.onnx$/i.test(out))
    throw new UsageError(
      `\`--format tfjs\` writes a folder, not ${out}; give a folder for --out, or --format onnx`,
    );
  if (!mask && format !== 'onnx')
    throw new UsageError(
      '`--no-mask` is for `--format onnx`; the tfjs export always takes all-zero frames as padding',
    );
  await modelDirFlag({ ...flags, model: modelDir });
  const there = await exists(out);
  if (there) {
    // Only what framewise wrote is replaced, known by its content: an ONNX model it produced, or a model folder whose framewise.json says so.
    const { isFramewiseOnnx } = await import('../tasks/index.js');
    const ours =
      format === 'onnx'
        ? there === 'file' && (await isFramewiseOnnx(out))
        : there === 'dir' &&
          (await saysOwn(
            join(out, OUTPUT_DIRS.model.marker),
            OUTPUT_DIRS.model.field,
            OUTPUT_DIRS.model.value,
          ));
    if (!flags.force) throw new UsageError(`${out} exists; pass --force to replace it`);
    if (!ours)
      throw new UsageError(`${out} exists and is not a framewise ${format} export; not replacing it`);
  }
  if (format === 'onnx') {
    const { exportOnnx } = await import('../index.js');
    const result = await exportOnnx(modelDir, out, { frames, mask });
    const T = frames ?? 'T';
    const S = result.size;
    const inputs = `frames uint8 [N, ${T}, ${S}, ${S}, 3]${mask ? `, mask bool [N, ${T}]` : ' (all-zero frames are padding)'}`;
    process.stdout.write(
      `wrote ${result.file} (${(result.bytes / 2 ** 20).toFixed(1)} MiB): ${inputs} -> probs (${result.mode} mode, ${result.labels.join(', ')})\n`,
    );
  } else {
    const { exportEndToEnd } = await import('../index.js');
    const info = await exportEndToEnd(modelDir, out, { frames });
    process.stdout.write(
      `wrote ${out}: a tfjs LayersModel, frames [N, ${frames ?? 'T'}, ${info.size}, ${info.size}, 3] -> probs (${info.mode} mode)\n`,
    );
  }
  return 0;
}
