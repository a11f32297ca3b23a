/**
 * A frame model's timeline end to end, through the built CLI, on two-scene videos with known
 * switch times (test/scenes.ts, a tagger trained in seconds): segments in JSONL and CSV, the
 * video label covering the most time, `--threshold`'s `unknown`, WebVTT and SRT read back by
 * ffmpeg, and the mode mismatches of `classify` and `eval` (exit 2).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { tempDir } from '../helpers.js';
import { SCENES, sceneModels, sceneRow, twoSceneVideo, type TwoScenes } from '../scenes.js';
import { assertBuilt, jsonl, runCli } from './helpers.js';

const dir = tempDir('fw-cli-timeline-');
let models: { tagger: string; clipper: string };
/** What the first test's classify gave for dusk.mp4, which the subtitle tests read back. */
let duskSegments: Array<{ start: number; end: number; label: string }>;
/** Held-out videos: the first scene covers less time in one, more in the other. */
const HELD: Array<[string, TwoScenes]> = [
  ['dusk.mp4', { first: 'day', second: 'night', switchAt: 1.7, duration: 5 }],
  ['dawn.mp4', { first: 'night', second: 'day', switchAt: 3.2, duration: 4.5 }],
];
/** One sampled frame, in seconds. */
const STEP = 1 / SCENES.samplesPerSecond;

beforeAll(async () => {
  assertBuilt();
  models = await sceneModels(dir, { tagger: true, clipper: true });
  for (const [name, v] of HELD) twoSceneVideo(join(dir, name), v);
  writeFileSync(join(dir, 'held.jsonl'), `${HELD.map(([name, v]) => sceneRow(name, v)).join('\n')}\n`);
}, 120_000);

const classify = (args: string[]) =>
  runCli(['classify', ...args, '--model', models.tagger, '--no-cache', '--quiet']);

/** The cues ffmpeg reads from a subtitle file, as [start, end, text] (ASS times, to the centisecond). */
function cuesByFfmpeg(file: string): Array<[number, number, string]> {
  const r = spawnSync(
    resolveBinaries().ffmpeg,
    ['-hide_banner', '-loglevel', 'error', '-i', file, '-f', 'ass', '-'],
    { encoding: 'utf8' },
  );
  expect(r.status, r.stderr).toBe(0);
  const time = (s: string): number => s.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
  return r.stdout
    .split(/\r?\n/)
    .filter((l) => l.startsWith('Dialogue:'))
    .map((l) => {
      const f = l.slice('Dialogue: '.length).split(',');
      return [time(f[1]), time(f[2]), f.slice(9).join(',')];
    });
}

describe('classify with a frame model', () => {
  it('gives segments whose switch is within one sampled frame of the truth, and the label covering the most time', async () => {
    const r = await classify([join(dir, 'held.jsonl')]);
    expect(r.code, r.stderr).toBe(0);
    const records = jsonl<{
      path: string;
      label: string;
      score: number;
      segments: Array<{ start: number; end: number; label: string; score: number }>;
    }>(r.stdout);
    HELD.forEach(([name, v], i) => {
      const rec = records[i];
      expect(rec.path.endsWith(name)).toBe(true);
      expect(rec.segments.map((s) => s.label)).toEqual([v.first, v.second]);
      expect(rec.segments[0].start).toBe(0);
      expect(Math.abs(rec.segments[1].start - v.switchAt)).toBeLessThanOrEqual(STEP);
      expect(rec.segments[0].end).toBe(rec.segments[1].start);
      expect(rec.segments[1].end).toBeCloseTo(v.duration, 1);
      for (const s of rec.segments) expect(s.score).toBeGreaterThan(0.5);
      // The video label is the scene covering the most time, its score the share of it.
      const longer =
        rec.segments[0].end - rec.segments[0].start > rec.segments[1].end - rec.segments[1].start
          ? rec.segments[0]
          : rec.segments[1];
      expect(rec.label).toBe(longer.label);
      expect(rec.score).toBeCloseTo((longer.end - longer.start) / rec.segments[1].end, 5);
    });
    expect(records.map((x) => x.label)).toEqual(['night', 'night']);
    duskSegments = records[0].segments;
  });

  it('--format csv writes one row per segment; --threshold 1 makes every frame unknown', async () => {
    const out = join(dir, 'held.csv');
    expect((await classify([join(dir, 'held.jsonl'), '--out', out])).code).toBe(0);
    const rows = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(Object.keys(rows[0])).toEqual([
      'path',
      'start',
      'end',
      'label',
      'score',
      'error_code',
      'error_message',
      'warnings',
      'span_start',
      'span_end',
    ]);
    expect(rows.map((row) => [row.path.split('/').pop(), row.label])).toEqual([
      ['dusk.mp4', 'day'],
      ['dusk.mp4', 'night'],
      ['dawn.mp4', 'night'],
      ['dawn.mp4', 'day'],
    ]);
    // --resume finds both videos done (their units are the spans, not the segments).
    const again = await classify([join(dir, 'held.jsonl'), '--out', out, '--resume']);
    expect(again.code).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(5);

    const unknown = jsonl<{ label: string; segments: Array<{ label: string }> }>(
      (await classify([join(dir, 'dusk.mp4'), '--threshold', '1'])).stdout,
    )[0];
    expect(unknown.label).toBe('unknown');
    expect(unknown.segments.map((s) => s.label)).toEqual(['unknown']);
    // --min-segment 2: dusk's day (about 1.75 s) joins the night that follows it.
    const merged = jsonl<{ label: string; segments: Array<{ start: number; end: number; label: string }> }>(
      (await classify([join(dir, 'dusk.mp4'), '--min-segment', '2'])).stdout,
    )[0];
    expect(merged.segments.map((s) => [s.start, s.label])).toEqual([[0, 'night']]);
    expect(merged.segments[0].end).toBeCloseTo(5, 1);
  });

  it('--format vtt and srt write a file that ffmpeg reads back, cue by segment', async () => {
    const segments = duskSegments;
    for (const format of ['vtt', 'srt']) {
      const out = join(dir, `dusk.${format}`);
      const r = await classify([join(dir, 'dusk.mp4'), '--out', out]); // the extension picks the format
      expect(r.code, r.stderr).toBe(0);
      const cues = cuesByFfmpeg(out);
      expect(cues.map((c) => c[2])).toEqual(segments.map((s) => s.label));
      cues.forEach(([start, end], i) => {
        expect(start).toBeCloseTo(segments[i].start, 2);
        expect(end).toBeCloseTo(segments[i].end, 2);
      });
    }
    expect(readFileSync(join(dir, 'dusk.vtt'), 'utf8')).toMatch(
      /^WEBVTT\n\n00:00:00\.000 --> 00:00:0\d\.\d{3}\nday\n\n/,
    );
  });

  it('for several videos --out is a folder of one file per video, named after it', async () => {
    const out = join(dir, 'subs');
    const r = await classify([join(dir, 'held.jsonl'), '--format', 'srt', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(
      readdirSync(out)
        .filter((f) => f.endsWith('.srt'))
        .sort(),
    ).toEqual(['dawn.srt', 'dusk.srt']);
    expect(cuesByFfmpeg(join(out, 'dawn.srt')).map((c) => c[2])).toEqual(['night', 'day']);
    expect(
      jsonl<{ file: string }>(readFileSync(join(out, 'index.jsonl'), 'utf8')).map((x) => x.file),
    ).toEqual(['dusk.srt', 'dawn.srt']);
    // One file cannot hold two videos.
    const one = await classify([join(dir, 'held.jsonl'), '--out', join(dir, 'both.vtt')]);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/holds one video's vtt and there are 2: give a folder as --out/);
  });
});

describe('mode mismatches (exit 2)', () => {
  it('names a frame model given clip labels, a clip model given segments, and vtt from a clip model', async () => {
    const frameOnClips = await runCli([
      'eval',
      join(dir, 'train.csv'),
      '--model',
      models.tagger,
      '--no-cache',
      '--quiet',
    ]);
    expect(frameOnClips.code).toBe(2);
    expect(frameOnClips.stderr).toMatch(
      /This is a frame model \(one label per frame\) and the dataset has clip labels/,
    );
    const clipOnFrames = await runCli([
      'eval',
      join(dir, 'held.jsonl'),
      '--model',
      models.clipper,
      '--no-cache',
      '--quiet',
    ]);
    expect(clipOnFrames.code).toBe(2);
    expect(clipOnFrames.stderr).toMatch(
      /This is a clip model \(one label per clip\) and the dataset has frame labels/,
    );
    for (const r of [frameOnClips, clipOnFrames]) expect(r.stderr).not.toMatch(/has no label/);
    const vtt = await runCli([
      'classify',
      join(dir, 'dusk.mp4'),
      '--model',
      models.clipper,
      '--out',
      join(dir, 'clip.vtt'),
      '--no-cache',
    ]);
    expect(vtt.code).toBe(2);
    expect(vtt.stderr).toMatch(/`--format vtt` writes a frame model's segments, and this is a clip model/);
  });
});

describe('--threshold with a clip model', () => {
  it('classify labels a video below it unknown, and eval counts it wrong in the coverage', async () => {
    const r = await runCli([
      'classify',
      join(dir, 'dusk.mp4'),
      '--model',
      models.clipper,
      '--threshold',
      '1',
      '--no-cache',
      '--quiet',
    ]);
    expect(jsonl<{ label: string; score: number }>(r.stdout)[0]).toMatchObject({
      label: 'unknown',
      score: expect.any(Number),
    });
    const e = await runCli([
      'eval',
      join(dir, 'train.csv'),
      '--model',
      models.clipper,
      '--threshold',
      '1',
      '--json',
      '--no-cache',
      '--quiet',
    ]);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).metrics.coverage).toEqual({
      threshold: 1,
      coverage: 0,
      accuracy: 0,
      answeredAccuracy: null,
    });
  });
});

describe('eval --threshold and --thresholds', () => {
  it('counts unknown as wrong, reports the coverage, and prints accuracy against coverage', async () => {
    const out = join(dir, 'report');
    const r = await runCli([
      'eval',
      join(dir, 'held.jsonl'),
      '--model',
      models.tagger,
      '--threshold',
      '1',
      '--thresholds',
      '0,1',
      '--out',
      out,
      '--no-cache',
      '--quiet',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    const frames = report.counts.frames;
    // Every top score is below 1: nothing is answered; at 0 everything is.
    expect(report.metrics.coverage).toEqual({
      threshold: 1,
      coverage: 0,
      accuracy: 0,
      answeredAccuracy: null,
    });
    expect(report.metrics.thresholds[0]).toEqual({
      threshold: 0,
      coverage: 1,
      accuracy: report.metrics.frame.frameAccuracy,
      answeredAccuracy: report.metrics.frame.frameAccuracy,
    });
    expect(frames).toBeGreaterThan(30);
    expect(r.stdout).toMatch(/^threshold 1: coverage 0\.0000, accuracy 0\.0000 \(unknown counted wrong\)/m);
    expect(r.stdout).toMatch(/^threshold\s+coverage\s+accuracy\s+answered accuracy$/m);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/## Coverage/);
    // The curves, drawn from the frames, beside confusion.png.
    expect(md).toContain('![precision-recall per class](pr.png)');
    expect(md).toContain('![reliability diagram](reliability.png)');
    for (const png of ['confusion.png', 'pr.png', 'reliability.png'])
      expect(readFileSync(join(out, png)).subarray(1, 4).toString()).toBe('PNG');
  });
});

describe('framewise split of a frame dataset', () => {
  it('splits videos whole by majority label, prints seconds per label and part, and is the same for the same seed', async () => {
    const run = (out: string) =>
      runCli(['split', join(dir, 'train.jsonl'), '--out', join(dir, out), '--test', '0.5', '--seed', '4']);
    const r = await run('split-a');
    expect(r.code, r.stderr).toBe(0);
    // Two videos of each majority (t1, t3 day; t2, t4 night): one of each goes to test.
    expect(r.stdout).toMatch(/^day\s+\d+\.\ds\s+0\.0s\s+\d+\.\ds$/m);
    expect(r.stdout).toMatch(/videos whole, stratified by majority label: 2 train, 0 val, 2 test/);
    expect((await run('split-b')).code).toBe(0);
    for (const part of ['train.jsonl', 'test.jsonl'])
      expect(readFileSync(join(dir, 'split-a', part), 'utf8')).toBe(
        readFileSync(join(dir, 'split-b', part), 'utf8'),
      );
    const summary = JSON.parse(readFileSync(join(dir, 'split-a', 'split.json'), 'utf8'));
    expect(summary.schema).toBe('framewise.split/1');
    const seconds = summary.seconds as Record<string, { train: number; test: number }>;
    expect(seconds.day.train + seconds.day.test + seconds.night.train + seconds.night.test).toBeCloseTo(
      16,
      6,
    ); // four 4 s videos
  });
});
