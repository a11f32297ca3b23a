/**
 * `framewise info <video> [--frames N] [--sampling uniform|fps:<n>|window:<len>/<stride>]`:
 * prints the probe and the clip plan as one JSON object on stdout. A video that cannot be
 * read prints `{"error":{"code","message"}}` on stdout and exits 1; bad flags exit 2.
 */
import type { CAC } from 'cac';
import { FramewiseError } from '../errors.js';
import { intFlag, type Flags } from './common.js';
import { samplingForms } from '../tasks/options.js';

export function register(cli: CAC): void {
  cli
    .command('info <video>', 'Print what ffprobe says about a video and the clips a sampling would take, as JSON')
    .option('--frames <n>', 'Frames per clip (default: 16)')
    .option('--sampling <s>', `${samplingForms()} (default: uniform)`)
    .example('framewise info samples/forward/zoom-pal.mp4 --frames 8 --sampling fps:4')
    .action((video: unknown, flags: Flags) => runInfo(String(video), flags));
}

export async function runInfo(video: string, flags: Flags): Promise<number> {
  const frames = intFlag(flags, 'frames') ?? 16;
  const { parseSampling, probe, planClips } = await import('../index.js');
  const sampling = parseSampling(flags.sampling === undefined ? 'uniform' : String(flags.sampling), frames, '--sampling');
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
