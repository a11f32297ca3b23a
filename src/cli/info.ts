/**
 * `framewise info <video> [--frames N] [--sampling uniform|fps:<n>|window:<len>/<stride>]`:
 * prints the probe and the clip plan as one JSON object on stdout. A video that cannot be
 * read prints `{"error":{"code","message"}}` on stdout and exits 1; bad flags exit 2.
 *
 * `framewise info <folder|manifest...> [--json] [--concurrency N]`: probes every video (no
 * decode) and prints a table: videos (or, for a frame dataset, seconds) per label, total and
 * median duration, resolutions, frame rates and codecs as counts, and the files that will
 * fail with their codes; `--json` prints the same as JSON. Exits 1 when some files fail.
 */
import { stat } from 'node:fs/promises';
import type { CAC } from 'cac';
import { FramewiseError } from '../errors.js';
import type { InputEntry } from '../index.js';
import type { DatasetInfo } from '../tasks/index.js';
import { inputList, intFlag, stringFlag, type Flags } from './common.js';
import { DECODERS, samplingForms } from '../tasks/options.js';

export function register(cli: CAC): void {
  cli
    .command(
      'info <...inputs>',
      'One video: its probe and the clips a sampling would take, as JSON. A folder or manifest: a summary of the dataset',
    )
    .option('--frames <n>', 'Frames per clip (default: 16)')
    .option('--sampling <s>', `${samplingForms()} (default: uniform)`)
    .option('--json', 'A folder or manifest: print the summary as JSON')
    .option('--concurrency <n>', 'A folder or manifest: probes at once (default: 2)')
    .option('--decoder <d>', `Who probes: auto (the first that loads) | ${DECODERS.help()} (default: auto)`)
    .example('framewise info samples/forward/zoom-pal.mp4 --frames 8 --sampling fps:4')
    .example('framewise info data/train.csv --concurrency 4')
    .action((inputs: unknown, flags: Flags) => runInfoCommand(inputList(inputs), flags));
}

async function runInfoCommand(inputs: string[], flags: Flags): Promise<number> {
  // One video (not a folder or manifest): its probe and plan, and its error object when it cannot be read.
  if (
    inputs.length === 1 &&
    !/\.(csv|jsonl|ndjson)$/i.test(inputs[0]) &&
    !(await stat(inputs[0]).catch(() => null))?.isDirectory()
  )
    return runInfo(inputs[0], flags);
  const { discoverInputs } = await import('../index.js');
  return runDatasetInfo(await discoverInputs(inputs), flags);
}

async function runDatasetInfo(entries: InputEntry[], flags: Flags): Promise<number> {
  const { datasetInfo } = await import('../tasks/index.js');
  const decoder = stringFlag(flags, 'decoder') as 'auto' | 'libav' | 'cli' | undefined;
  const info = await datasetInfo(entries, {
    concurrency: intFlag(flags, 'concurrency') ?? 2,
    ...(decoder ? { decoder } : {}),
  });
  process.stdout.write(flags.json === true ? `${JSON.stringify(info, null, 2)}\n` : formatDatasetInfo(info));
  return info.failures.length > 0 ? 1 : 0;
}

/** The table `info` prints for a dataset. */
export function formatDatasetInfo(info: DatasetInfo): string {
  const s = (x: number): string => `${x.toFixed(1)}s`;
  const lines = [`${info.videos} videos, ${info.probed} probed, ${info.failures.length} will fail`];
  const section = (
    title: string,
    counts: Record<string, number>,
    show: (n: number) => string = String,
  ): void => {
    const rows = Object.entries(counts);
    if (rows.length === 0) return;
    const width = Math.max(...rows.map(([k]) => k.length));
    lines.push('', title, ...rows.map(([k, n]) => `  ${k.padEnd(width)}  ${show(n)}`));
  };
  section(
    info.labelling === 'frame' ? 'seconds per label' : 'videos per label',
    info.labels,
    info.labelling === 'frame' ? s : String,
  );
  lines.push(
    '',
    `duration  total ${s(info.duration.total)}, median ${info.duration.median === null ? '–' : s(info.duration.median)}`,
  );
  section('resolutions', info.resolutions);
  section('frame rates', info.frameRates);
  section('codecs', info.codecs);
  if (info.failures.length > 0) {
    lines.push('', 'will fail');
    for (const f of info.failures) lines.push(`  ${f.path}: ${f.code}: ${f.message.split('\n')[0]}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function runInfo(video: string, flags: Flags): Promise<number> {
  const frames = intFlag(flags, 'frames') ?? 16;
  const { parseSampling, probe, planClips } = await import('../index.js');
  const sampling = parseSampling(
    flags.sampling === undefined ? 'uniform' : String(flags.sampling),
    frames,
    '--sampling',
  );
  try {
    const result = await probe(video);
    const clips = planClips(result, sampling);
    process.stdout.write(`${JSON.stringify({ probe: result, sampling, clips }, null, 2)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof FramewiseError && error.code !== 'FFMPEG_NOT_FOUND') {
      process.stdout.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
      return 1;
    }
    throw error;
  }
}
