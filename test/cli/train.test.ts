/**
 * `framewise train` as a new user runs it (issue 32), through the built CLI: on the 24-video
 * three-class set (made by scripts/make-samples.mjs --three-class), the defaults stop early and
 * say why, and the model folder keeps history.csv and curves.png; an ensemble goes through
 * classify, eval and the ONNX export, each averaging its members.
 */
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractClips, planClips, probe } from '../../src/ingest/index.js';
import { testCacheDir } from '../model/helpers.js';
import { assertBuilt, jsonl, ROOT, runCli } from './helpers.js';
import { tempDir } from '../helpers.js';

const DATA = join(tmpdir(), 'framewise-three-class-v1');
const dir = tempDir('fw-cli-train-');
const cache = join(dir, 'cache');
const env = { FRAMEWISE_CACHE: testCacheDir() };

beforeAll(() => {
  assertBuilt();
  const run = spawnSync(
    process.execPath,
    [join(ROOT, 'scripts', 'make-samples.mjs'), '--three-class', DATA],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(run.stderr);
});

/** history.csv's rows as objects of numbers. */
function history(file: string): Array<Record<string, number>> {
  const [header, ...rows] = readFileSync(file, 'utf8').trim().split('\n');
  const names = header.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [names[i], Number(v)])));
}

describe('framewise train on the 24-video three-class set', () => {
  it("--help tells the training batch (--batch-size) from the backbone's (--batch)", async () => {
    const help = await runCli(['train', '--help']);
    expect(help.stdout).toMatch(
      /--batch-size <n> +Training: clips per gradient step of the head \(default: 16; not --batch, the backbone's clips per call\)/,
    );
    expect(help.stdout).toMatch(
      /--batch <n> +Clips per backbone call \(default: 4; train: not the training batch, see --batch-size\)/,
    );
    for (const flag of [
      '--monitor <m>',
      '--min-delta <d>',
      '--lr-schedule <s>',
      '--class-weight <w>',
      '--ensemble <n>',
      '--resume',
    ])
      expect(help.stdout).toContain(flag);
  });

  it('stops early with the defaults (<= 25 epochs), says why, and keeps history.csv and curves.png', async () => {
    const out = join(dir, 'model');
    const run = await runCli(['train', DATA, '--out', out, '--cache', cache], env);
    expect(run.code, run.stderr).toBe(0);
    const rows = history(join(out, 'history.csv'));
    expect(rows.length).toBeLessThanOrEqual(25);
    expect(Object.keys(rows[0])).toEqual(['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds']);
    expect(rows.map((r) => r.epoch)).toEqual(rows.map((_, i) => i + 1));
    expect(rows.every((r) => r.lr === 0.001 && r.seconds > 0)).toBe(true);
    const stop = new RegExp(
      `stopped early after epoch ${rows.length}: no improvement over 0.0001 for 11 epochs \\(patience 10\\); best val_loss \\S+ at epoch ${rows.length - 11}`,
    );
    expect(run.stdout).toMatch(stop);
    // The epoch lines show a loss below 0.0001 in digits that move, not as 0.0000.
    expect(run.stderr).not.toMatch(/val_loss 0\.0000 /);
    expect(readFileSync(join(out, 'curves.png')).subarray(1, 4).toString()).toBe('PNG');
    const info = JSON.parse(readFileSync(join(out, 'framewise.json'), 'utf8'));
    expect(info.metrics.stop).toMatchObject({
      reason: 'early',
      monitor: 'val_loss',
      minDelta: 0.0001,
      patience: 10,
    });
    expect(existsSync(join(out, 'checkpoint.bin'))).toBe(false);
  }, 300_000 /* 12-25 epochs of the default 256-unit head on a loaded 2-core box */);

  it('an ensemble goes through classify, eval (each member and the ensemble in report.md) and one averaging ONNX graph', async () => {
    const out = join(dir, 'ensemble');
    const train = await runCli(
      [
        'train',
        DATA,
        '--out',
        out,
        '--cache',
        cache,
        '--units',
        '8',
        '--epochs',
        '3',
        '--ensemble',
        '3',
        '--frames',
        '8',
      ],
      env,
    );
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout).toMatch(/Member 3 \(seed 44\): ran all 3 epochs/);
    expect(train.stdout).toMatch(/Ensemble of 3 \(probabilities averaged\)/);
    for (const f of [
      'history-1.csv',
      'history-2.csv',
      'history-3.csv',
      'curves.png',
      'member-2/weights.bin',
      'member-3/model.json',
    ])
      expect(existsSync(join(out, f)), f).toBe(true);

    const video = join(DATA, 'noise', 'noise-3.mp4');
    const classify = await runCli(['classify', video, '--model', out, '--cache', cache], env);
    expect(classify.code, classify.stderr).toBe(0);
    const [record] = jsonl<{ topk: Array<{ label: string; score: number }> }>(classify.stdout);

    const report = join(dir, 'report');
    const evaluate = await runCli(['eval', DATA, '--model', out, '--cache', cache, '--out', report], env);
    expect(evaluate.code, evaluate.stderr).toBe(0);
    const md = readFileSync(join(report, 'report.md'), 'utf8');
    expect(md).toMatch(/\| member 1 \| 42 \| \d+ of 3 \| [\d.]+% \|/);
    expect(md).toMatch(/\| member 3 \| 44 \| \d+ of 3 \| [\d.]+% \|/);
    expect(md).toMatch(/\| ensemble \(averaged\) \| – \| – \| [\d.]+% \|/);
    expect(md).toContain('![training curves](../ensemble/curves.png)');

    const onnxFile = join(dir, 'ensemble.onnx');
    const exported = await runCli(['export', out, '--out', onnxFile], env);
    expect(exported.code, exported.stderr).toBe(0);
    const info = await probe(video);
    const [clip] = await extractClips(video, planClips(info, { kind: 'uniform', frames: 8 }), {
      size: 224,
      probe: info,
    });
    const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(onnxFile)));
    let probs: Float32Array;
    try {
      const feeds = {
        frames: new ort.Tensor('uint8', clip.data, [1, 8, 224, 224, 3]),
        mask: new ort.Tensor('bool', new Uint8Array(8).fill(1), [1, 8]),
      };
      probs = (await session.run(feeds)).probs.data as Float32Array;
    } finally {
      await session.release();
    }
    const labels = ['bars', 'fractal', 'noise'];
    for (const { label, score } of record.topk)
      expect(Math.abs(probs[labels.indexOf(label)] - score), label).toBeLessThan(1e-4);
  }, 300_000);
});
