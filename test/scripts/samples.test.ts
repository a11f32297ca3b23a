/**
 * samples/ is reproducible: scripts/make-samples.mjs, run with the ffmpeg that framewise
 * installs (@ffmpeg-installer/ffmpeg), remakes the committed files.
 *
 * Not byte for byte: the scenes are drawn by `geq` in floating point, and the same static
 * ffmpeg binary rounds a few pixels by 1 differently on another CPU (an AVX-512 EPYC remakes
 * 4 of the 6 videos with other bytes, at 50-65 dB PSNR). So the labels file must be equal to
 * the byte, and each video must decode, frame for frame, to the committed one within a
 * rounding (every frame's PSNR at least 40 dB); a change of scene, colour, size, length or
 * frame rate fails here, with the file's name.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('framewise-samples-');
const FFMPEG: string = createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg').path;
const MIN_PSNR_DB = 40;

function files(root: string, ext: RegExp): string[] {
  return readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => ext.test(f))
    .sort();
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Frame count of each input and the lowest per-frame PSNR between them (ffmpeg's psnr filter). */
function compare(made: string, committed: string): { frames: [number, number]; minPsnr: number } {
  const run = spawnSync(
    FFMPEG,
    [
      '-hide_banner',
      '-nostdin',
      '-i',
      made,
      '-i',
      committed,
      '-lavfi',
      '[0:v][1:v]psnr=stats_file=-',
      '-f',
      'null',
      '-',
    ],
    { encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  // stats_file=- writes one line per frame pair: "n:1 mse_avg:... psnr_avg:64.2 ..." (inf when equal).
  const psnrs = run.stdout
    .split('\n')
    .map((line) => /psnr_avg:(\S+)/.exec(line)?.[1])
    .filter((v): v is string => v !== undefined)
    .map((v) => (v === 'inf' ? Infinity : Number(v)));
  // One framemd5 line per decoded frame; '#' lines are its header.
  const count = (file: string): number =>
    spawnSync(FFMPEG, ['-hide_banner', '-nostdin', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], {
      encoding: 'utf8',
    })
      .stdout.split('\n')
      .filter((line) => line !== '' && !line.startsWith('#')).length;
  return { frames: [count(made), count(committed)], minPsnr: Math.min(...psnrs) };
}

describe('scripts/make-samples.mjs', () => {
  it('remakes the committed samples/ with the installed ffmpeg: the labels byte for byte, every video frame for frame', () => {
    const env = { ...process.env };
    delete env.FFMPEG_PATH; // the binary framewise installs, as on a fresh clone
    const run = spawnSync(
      process.execPath,
      [join(ROOT, 'scripts', 'make-samples.mjs'), '--samples-only', '--samples-dir', dir],
      { encoding: 'utf8', env },
    );
    expect(run.status, run.stderr).toBe(0);
    const samples = join(ROOT, 'samples');
    expect(files(dir, /\.(mp4|csv)$/)).toEqual(files(samples, /\.(mp4|csv)$/));
    expect(files(samples, /\.(mp4|csv)$/)).toHaveLength(7);
    for (const csv of files(samples, /\.csv$/))
      expect(sha256(join(dir, csv)), csv).toBe(sha256(join(samples, csv)));
    for (const video of files(samples, /\.mp4$/)) {
      const { frames, minPsnr } = compare(join(dir, video), join(samples, video));
      expect(frames[0], `${video}: frames`).toBe(frames[1]);
      expect(frames[0], `${video}: frames`).toBeGreaterThan(0);
      expect(minPsnr, `${video}: lowest frame PSNR (dB)`).toBeGreaterThanOrEqual(MIN_PSNR_DB);
    }
  });
});
