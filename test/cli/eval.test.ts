/**
 * `framewise train` / `eval` / `compare` / `split` end to end, through the CLI as a child
 * process (dist/, built by `npm test`), on the generated fixtures: the arrow-of-time task in
 * clip mode and the segment videos in frame mode.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { confusionLayout, type MetricsReport } from '../../src/evaluation/report.js';
import { fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';
import { testCacheDir } from '../model/helpers.js';
import { assertBuilt, runCli, type CliRun } from './helpers.js';

/** Shared with the other test files: backbone and embedding caches survive between files. */
const CACHE = testCacheDir();

function cli(args: string[]): Promise<CliRun> {
  // Commands that run the backbone share the test embedding cache.
  const full = args[0] === 'train' || args[0] === 'eval' ? [...args, '--cache', CACHE] : args;
  return runCli(full, { FRAMEWISE_CACHE: CACHE });
}

async function ok(args: string[]): Promise<CliRun> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`framewise ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r;
}

const readJson = async <T = MetricsReport>(file: string): Promise<T> =>
  JSON.parse(await readFile(file, 'utf8')) as T;
const withoutTiming = (r: MetricsReport): Omit<MetricsReport, 'timing'> => {
  const { timing: _t, ...rest } = r;
  return rest;
};

const work = tempDir('fw-eval-cli-');
const EPOCHS = '10';
/** Tests that train or decode get room on a busy 2-core machine. */
const SLOW = 600_000;

beforeAll(async () => {
  assertBuilt();
  // The lstm model that most tests evaluate.
  await ok([
    'train',
    fixture('arrow/train.csv'),
    '--out',
    join(work, 'lstm'),
    '--head',
    'lstm',
    '--seed',
    '1',
    '--epochs',
    EPOCHS,
    '--units',
    '64',
    '--frames',
    '8',
    '--quiet',
  ]);
}, SLOW);

describe('framewise eval (clip mode)', () => {
  let first: MetricsReport;

  it(
    'writes metrics.json, predictions.jsonl, report.md and confusion.png, and prints metrics.json with --json',
    async () => {
      const out = join(work, 'reports', 'lstm');
      const r = await ok([
        'eval',
        fixture('arrow/test.csv'),
        '--model',
        join(work, 'lstm'),
        '--out',
        out,
        '--json',
        '--quiet',
      ]);
      const report = await readJson(join(out, 'metrics.json'));
      expect(JSON.parse(r.stdout)).toEqual(report);
      first = report;

      expect(report.schema).toBe('framewise.metrics/1');
      expect(report.mode).toBe('clip');
      expect(report.model.id).toMatch(/^sha256:[0-9a-f]{16}$/);
      expect(report.model.labels).toEqual(['forward', 'reversed']);
      expect(report.model.head).toBe('lstm');
      expect(report.model.trainSeed).toBe(1);
      expect(report.dataset.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(report.dataset.classCounts).toEqual({ forward: 10, reversed: 10 });
      expect(report.counts).toMatchObject({ videos: 20, evaluated: 20, failed: 0, ignored: 0, clips: 20 });
      expect(report.versions.tfjs).toBe('4.22.0');
      expect(report.versions.backend?.name).toMatch(/^(tensorflow|wasm|cpu)$/);
      expect(report.timing.backboneEngine).toMatch(/^(onnx|tfjs|none)$/);
      if (report.timing.backboneEngine !== 'tfjs')
        expect(report.timing).not.toHaveProperty('backboneBackend');
      expect(report.settings).toMatchObject({
        topK: 5,
        aggregate: 'mean',
        frames: expect.any(Number),
        size: 224,
      });
      expect(report.timing.wallMs).toBeGreaterThan(0);

      const v = report.metrics.video!;
      expect(v.count).toBe(20);
      expect(v.confusion.labels).toEqual(['forward', 'reversed']);
      expect(v.confusion.matrix.flat().reduce((a, b) => a + b, 0)).toBe(20);
      expect(v.topK).toBeNull(); // 2 classes, k = 5
      expect(v.calibration).toHaveLength(10);
      // Better than chance on held-out scenes (the accuracy targets belong to the model tests).
      expect(v.top1).toBeGreaterThan(0.5);
      // One uniform clip per video: the clip level equals the video level.
      expect(report.metrics.clip!.top1).toBe(v.top1);

      const predictions = (await readFile(join(out, 'predictions.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(predictions).toHaveLength(20);
      for (const p of predictions) {
        expect(p).toMatchObject({
          path: expect.any(String),
          label: expect.any(String),
          trueLabel: expect.stringMatching(/^(forward|reversed)$/),
        });
        expect(p.correct).toBe(p.label === p.trueLabel);
      }
      expect(predictions.filter((p) => p.correct).length).toBe(v.correct);

      const md = await readFile(join(out, 'report.md'), 'utf8');
      expect(md).toContain('## Summary');
      expect(md).toContain(`## Misclassified videos (${20 - v.correct})`);
      const meta = await sharp(join(out, 'confusion.png')).metadata();
      const layout = confusionLayout(['forward', 'reversed']);
      expect([meta.format, meta.width, meta.height]).toEqual(['png', layout.width, layout.height]);
    },
    SLOW,
  );

  it(
    'gives identical metrics.json apart from timing on a second, cached run, and prints a table',
    async () => {
      const out = join(work, 'reports', 'lstm-again');
      const r = await ok([
        'eval',
        fixture('arrow/test.csv'),
        '--model',
        join(work, 'lstm'),
        '--out',
        out,
        '--quiet',
      ]);
      const again = await readJson(join(out, 'metrics.json'));
      expect(withoutTiming(again)).toEqual(withoutTiming(first));
      // Everything came from the embedding cache: nothing decoded, nothing through the backbone.
      expect(again.timing).toMatchObject({ cachedVideos: 20, videosDecoded: 0, framesEmbedded: 0 });
      expect(r.stdout).toMatch(/^20 videos evaluated; 20 clips; mode clip; model sha256:/);
      expect(r.stdout).toMatch(
        new RegExp(
          `^top-1 accuracy\\s+${first.metrics.video!.top1.toFixed(4)}\\s+${first.metrics.clip!.top1.toFixed(4)}$`,
          'm',
        ),
      );
      expect(r.stdout).toContain(`report: ${out}`);
    },
    SLOW,
  );

  it(
    'train with the same seed twice gives the same model and the same metrics',
    async () => {
      await ok([
        'train',
        fixture('arrow/train.csv'),
        '--out',
        join(work, 'lstm-2'),
        '--head',
        'lstm',
        '--seed',
        '1',
        '--epochs',
        EPOCHS,
        '--units',
        '64',
        '--frames',
        '8',
        '--quiet',
      ]);
      const out = join(work, 'reports', 'lstm-2');
      await ok(['eval', fixture('arrow/test.csv'), '--model', join(work, 'lstm-2'), '--out', out, '--quiet']);
      const twin = await readJson(join(out, 'metrics.json'));
      expect(twin.metrics).toEqual(first.metrics);
      expect(twin.model.id).toBe(first.model.id);
      const info = (dir: string): Promise<{ metrics: unknown }> =>
        readJson(join(work, dir, 'framewise.json'));
      expect((await info('lstm-2')).metrics).toEqual((await info('lstm')).metrics);
    },
    SLOW,
  );

  it(
    'counts and lists a video that fails to decode, excludes it, and exits 1',
    async () => {
      const manifest = join(work, 'with-bad.csv');
      const rows = [
        'path,label',
        `${fixture('arrow/forward/zoom-pal.mp4')},forward`,
        `${fixture('edge/truncated-nomoov.mp4')},forward`,
        `${fixture('arrow/reversed/zoom-pal.mp4')},reversed`,
      ];
      await writeFile(manifest, `${rows.join('\n')}\n`);
      const out = join(work, 'reports', 'with-bad');
      const r = await cli(['eval', manifest, '--model', join(work, 'lstm'), '--out', out, '--quiet']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /warning: 1 video failed and is excluded from the metrics:\n\s+.*truncated-nomoov\.mp4: [A-Z_]+: /,
      );
      const report = await readJson(join(out, 'metrics.json'));
      expect(report.counts).toMatchObject({ videos: 3, evaluated: 2, failed: 1 });
      expect(report.failures).toEqual([
        {
          path: fixture('edge/truncated-nomoov.mp4'),
          label: 'forward',
          code: expect.stringMatching(/^[A-Z_]+$/),
          message: expect.any(String),
        },
      ]);
      expect(report.metrics.video!.count).toBe(2);
      expect(await readFile(join(out, 'report.md'), 'utf8')).toMatch(
        /## Failed videos \(1\)[\s\S]*truncated-nomoov\.mp4/,
      );
      const lines = (await readFile(join(out, 'predictions.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines[1]).toMatchObject({
        path: fixture('edge/truncated-nomoov.mp4'),
        trueLabel: 'forward',
        error: { code: expect.any(String) },
      });
    },
    SLOW,
  );

  it(
    'fails with exit 2 naming a label the model does not know, unless --ignore-unknown-labels',
    async () => {
      const manifest = join(work, 'unknown.csv');
      await writeFile(
        manifest,
        `path,label\n${fixture('arrow/forward/zoom-pal.mp4')},forward\n${fixture('arrow/reversed/zoom-pal.mp4')},sideways\n`,
      );
      const out = join(work, 'reports', 'unknown');
      const r = await cli(['eval', manifest, '--model', join(work, 'lstm'), '--out', out, '--quiet']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/framewise: The dataset has label 'sideways' that the model does not know/);
      expect(existsSync(out)).toBe(false);

      const ignored = await ok([
        'eval',
        manifest,
        '--model',
        join(work, 'lstm'),
        '--out',
        out,
        '--quiet',
        '--ignore-unknown-labels',
        '--json',
      ]);
      const report = JSON.parse(ignored.stdout) as MetricsReport;
      expect(report.counts).toMatchObject({ videos: 2, evaluated: 1, ignored: 1 });
      expect(report.ignored).toEqual([{ path: fixture('arrow/reversed/zoom-pal.mp4'), label: 'sideways' }]);
    },
    SLOW,
  );

  it('compare tables two reports with a paired bootstrap CI (identical models: exactly 0)', async () => {
    const r = await ok(['compare', join(work, 'reports', 'lstm'), join(work, 'reports', 'lstm-2')]);
    expect(r.stdout).toMatch(/^metric\s+lstm\s+lstm-2\s+Δ lstm-2$/m);
    expect(r.stdout).toMatch(/^top-1 accuracy\s+(\d\.\d{4})\s+\1\s+\+0\.0000$/m);
    expect(r.stdout).toContain(
      'lstm-2 - lstm: accuracy +0.0000 on 20 shared videos, 95% CI [+0.0000, +0.0000] (paired bootstrap, 1000 resamples, seed 0)',
    );
    const json = JSON.parse(
      (await ok(['compare', join(work, 'reports', 'lstm'), join(work, 'reports', 'with-bad'), '--json']))
        .stdout,
    );
    // The report with the bad video shares its 2 good videos with the full one.
    expect(json.bootstrap[0]).toMatchObject({
      baseline: 'lstm',
      other: 'with-bad',
      shared: 2,
      resamples: 1000,
      seed: 0,
    });
    expect(json.warnings[0]).toMatch(/different dataset/);
  });
});

describe('framewise eval (frame mode)', () => {
  it(
    'tags frames of held-out segment videos and reports frame accuracy, edit score and F1@k',
    async () => {
      await ok([
        'train',
        fixture('segments/train.jsonl'),
        '--out',
        join(work, 'tagger'),
        '--mode',
        'frame',
        '--seed',
        '1',
        '--epochs',
        EPOCHS,
        '--units',
        '64',
        '--frames',
        '8',
        '--quiet',
      ]);
      const out = join(work, 'reports', 'tagger');
      await ok([
        'eval',
        fixture('segments/test.jsonl'),
        '--model',
        join(work, 'tagger'),
        '--out',
        out,
        '--quiet',
      ]);
      const report = await readJson(join(out, 'metrics.json'));
      expect(report.mode).toBe('frame');
      const m = report.metrics.frame!;
      expect(m.videos).toBe(4);
      expect(m.frames).toBe(report.counts.frames);
      expect(Object.keys(m.f1At)).toEqual(['0.1', '0.25', '0.5']);
      expect(m.frameAccuracy).toBeGreaterThan(1 / 3); // better than chance over 3 labels
      expect(m.edit).toBeGreaterThan(0);
      expect(m.confusion.labels).toEqual(report.model.labels);
      // Truth per frame comes from the manifest's segments: check one video by hand.
      const manifest = (await readFile(fixture('segments/test.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const predictions = (await readFile(join(out, 'predictions.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const p = predictions[0];
      const segs = manifest.find((e: { path: string }) => p.path.endsWith(e.path.replace(/^\.\//, '')))!
        .segments as Array<{ start: number; end: number; label: string }>;
      for (const f of p.frames as Array<{ t: number; trueLabel: string }>) {
        const seg = segs.find((s) => f.t >= s.start && f.t < s.end) ?? segs[segs.length - 1];
        expect(f.trueLabel).toBe(seg.label);
      }
      expect(await readFile(join(out, 'report.md'), 'utf8')).toMatch(
        /\| segmental edit score \| \d\.\d{3} \|/,
      );
      expect((await sharp(join(out, 'confusion.png')).metadata()).format).toBe('png');
    },
    SLOW,
  );
});

describe('framewise split', () => {
  it('writes stratified manifests, the same for the same seed', async () => {
    const a = join(work, 'split-a');
    const b = join(work, 'split-b');
    const r = await ok([
      'split',
      fixture('arrow/forward/..'),
      '--out',
      a,
      '--test',
      '0.25',
      '--val',
      '0.125',
      '--seed',
      '3',
    ]);
    await ok(['split', fixture('arrow'), '--out', b, '--test', '0.25', '--val', '0.125', '--seed', '3']);
    expect(r.stdout).toMatch(/^forward\s+\d+\s+\d+\s+\d+$/m);
    for (const part of ['train.csv', 'val.csv', 'test.csv']) {
      expect(await readFile(join(a, part), 'utf8')).toBe(await readFile(join(b, part), 'utf8'));
    }
    const test = (await readFile(join(a, 'test.csv'), 'utf8')).trim().split('\n');
    expect(test[0]).toBe('path,label');
    const labels = test.slice(1).map((l) => l.split(',')[1]);
    expect(labels.filter((l) => l === 'forward').length).toBe(labels.filter((l) => l === 'reversed').length);
    // Paths are relative to the manifest and point at real videos.
    for (const line of test.slice(1)) expect(existsSync(join(a, line.split(',')[0]))).toBe(true);
    const summary = await readJson<{ seed: number; counts: Record<string, unknown> }>(join(a, 'split.json'));
    expect(summary.seed).toBe(3);
  });
});
