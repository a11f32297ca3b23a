/**
 * Two-scene videos with known switch times, and a frame model (a tagger) trained on them in
 * seconds: the backbone is a tiny .onnx that averages each colour channel, so a frame's
 * embedding is its mean colour and a one-colour scene is told from another at once.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveBinaries } from '../src/ingest/decoders/cli/ffmpeg.js';
import { runCli } from './cli/helpers.js';
import { writePoolModel } from './runners/helpers.js';

/** The scenes' frame rate, and the rate classify samples them at (the tagger's `fps:4`). */
export const SCENES = { fps: 10, samplesPerSecond: 4 } as const;

/** The colour of each label's scene. */
const COLOURS = { day: 'yellow', night: 'navy' } as const;
export type SceneLabel = keyof typeof COLOURS;

export interface TwoScenes {
  first: SceneLabel;
  second: SceneLabel;
  /** Seconds; a multiple of 1/fps. */
  switchAt: number;
  duration: number;
}

/** Writes a 64x48 H.264 video of `first`'s scene until `switchAt`, then `second`'s until `duration`. */
export function twoSceneVideo(file: string, v: TwoScenes): void {
  const source = (label: SceneLabel, d: number): string =>
    `color=c=${COLOURS[label]}:s=64x48:r=${SCENES.fps}:d=${d.toFixed(3)}`;
  const r = spawnSync(
    resolveBinaries().ffmpeg,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      source(v.first, v.switchAt),
      '-f',
      'lavfi',
      '-i',
      source(v.second, v.duration - v.switchAt),
      '-filter_complex',
      '[0][1]concat=n=2:v=1:a=0',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      file,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`ffmpeg could not write ${file}: ${r.stderr}`);
}

/** The JSONL manifest row of a two-scene video (its path relative to the manifest). */
export function sceneRow(name: string, v: TwoScenes): string {
  return JSON.stringify({
    path: name,
    segments: [
      { start: 0, end: v.switchAt, label: v.first },
      { start: v.switchAt, end: v.duration, label: v.second },
    ],
  });
}

const TRAIN: Array<[string, TwoScenes]> = [
  ['t1.mp4', { first: 'day', second: 'night', switchAt: 1.5, duration: 4 }],
  ['t2.mp4', { first: 'night', second: 'day', switchAt: 2, duration: 4 }],
  ['t3.mp4', { first: 'day', second: 'night', switchAt: 2.5, duration: 4 }],
  ['t4.mp4', { first: 'night', second: 'day', switchAt: 1, duration: 4 }],
];

/**
 * In `dir`: `pool.onnx`, the training videos and `train.jsonl` (frame labels), `train.csv`
 * (each video's first scene as its clip label), and with `models`, the tagger `tagger/`
 * (frame mode) and the clip model `clipper/`, trained through the CLI.
 */
export async function sceneModels(
  dir: string,
  models: { tagger?: boolean; clipper?: boolean } = { tagger: true },
): Promise<{ tagger: string; clipper: string; backbone: string }> {
  const backbone = join(dir, 'pool.onnx');
  await writePoolModel(backbone);
  for (const [name, v] of TRAIN) twoSceneVideo(join(dir, name), v);
  writeFileSync(join(dir, 'train.jsonl'), `${TRAIN.map(([name, v]) => sceneRow(name, v)).join('\n')}\n`);
  writeFileSync(
    join(dir, 'train.csv'),
    `path,label\n${TRAIN.map(([name, v]) => `${name},${v.first}`).join('\n')}\n`,
  );
  const train = async (manifest: string, out: string, mode: string): Promise<void> => {
    const args = [
      'train',
      join(dir, manifest),
      '--out',
      join(dir, out),
      '--mode',
      mode,
      '--backbone',
      backbone,
      '--sampling',
      'fps:4',
      '--frames',
      '16',
    ];
    const r = await runCli([
      ...args,
      '--units',
      '8',
      '--epochs',
      '80',
      '--learning-rate',
      '0.03',
      '--seed',
      '1',
      '--val-split',
      '0',
      '--no-cache',
      '--quiet',
    ]);
    if (r.code !== 0) throw new Error(`framewise train exited ${r.code}\n${r.stderr}`);
  };
  if (models.tagger) await train('train.jsonl', 'tagger', 'frame');
  if (models.clipper) await train('train.csv', 'clipper', 'clip');
  return { tagger: join(dir, 'tagger'), clipper: join(dir, 'clipper'), backbone };
}
