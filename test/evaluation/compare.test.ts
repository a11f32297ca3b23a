import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compareReports,
  formatComparison,
  loadReport,
  pairedBootstrap,
  quantile,
  type VideoScore,
} from '../../src/evaluation/compare.js';
import { reportMarkdown, writeReport } from '../../src/evaluation/report.js';
import { clipReport } from './report-fixtures.js';
import { tempDir } from '../helpers.js';

const scores = (bits: number[]): VideoScore[] => bits.map((b) => ({ correct: b, total: 1 }));

describe('quantile()', () => {
  it('interpolates linearly between order statistics', () => {
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4, 5], 0.975)).toBeCloseTo(4.9, 12);
  });
});

describe('pairedBootstrap()', () => {
  it('gives a zero-width interval at 0 for identical predictions', () => {
    const a = scores([1, 0, 1, 1, 0, 1]);
    const r = pairedBootstrap(a, a);
    expect(r).toMatchObject({
      shared: 6,
      difference: 0,
      ci: [0, 0],
      resamples: 1000,
      seed: 0,
      confidence: 0.95,
    });
  });

  it('gives [1, 1] when b is right wherever a is wrong and a is always wrong', () => {
    expect(pairedBootstrap(scores([0, 0, 0]), scores([1, 1, 1])).ci).toEqual([1, 1]);
  });

  it('is paired: a constant per-video gain has no spread even though accuracy varies', () => {
    // b is right exactly where a is, plus nothing: both vary across resamples, the difference never does.
    const a = scores([1, 0, 1, 0, 1, 0, 1, 0]);
    expect(
      pairedBootstrap(
        a,
        a.map((s) => ({ ...s })),
      ).ci,
    ).toEqual([0, 0]);
  });

  it('brackets a known improvement with about the binomial width, reproducibly', () => {
    // 100 videos: a right on 50, b right on the same 50 plus 20 more. d_i in {0, 1}, p = 0.2,
    // so the standard error is sqrt(0.2 * 0.8 / 100) = 0.04 and the 95% CI about 0.2 +- 0.08.
    const a = scores(Array.from({ length: 100 }, (_, i) => (i < 50 ? 1 : 0)));
    const b = scores(Array.from({ length: 100 }, (_, i) => (i < 70 ? 1 : 0)));
    const r = pairedBootstrap(a, b, { seed: 42 });
    expect(r.difference).toBeCloseTo(0.2, 12);
    expect(r.ci[0]).toBeGreaterThan(0.1);
    expect(r.ci[0]).toBeLessThan(0.15);
    expect(r.ci[1]).toBeGreaterThan(0.25);
    expect(r.ci[1]).toBeLessThan(0.3);
    expect(pairedBootstrap(a, b, { seed: 42 })).toEqual(r);
    expect(pairedBootstrap(a, b, { seed: 43 }).ci).not.toEqual(r.ci);
  });

  it('weights frame-mode videos by their frame count (micro accuracy)', () => {
    const r = pairedBootstrap(
      [
        { correct: 1, total: 10 },
        { correct: 0, total: 1 },
      ],
      [
        { correct: 10, total: 10 },
        { correct: 0, total: 1 },
      ],
    );
    expect(r.accuracyA).toBeCloseTo(1 / 11, 12);
    expect(r.accuracyB).toBeCloseTo(10 / 11, 12);
  });

  it.each([
    [{ resamples: 0 }, /Expected a positive integer for `resamples` but received 0/],
    [{ confidence: 1 }, /Expected a number > 0 and < 1 for `confidence` but received 1/],
  ])('rejects bad options %#', (options, message) => {
    expect(() => pairedBootstrap(scores([1]), scores([1]), options)).toThrow(message);
  });
});

describe('compareReports()', () => {
  it('tables two reports, their differences and the CI on shared videos', async () => {
    const root = tempDir('fw-compare-');
    const labels = ['fwd', 'rev'];
    const videos = Array.from({ length: 40 }, (_, i) => ({
      path: `/v/${i}.mp4`,
      truth: i % 2 ? 'rev' : 'fwd',
    }));
    const right = (t: string): number[] => (t === 'fwd' ? [0.8, 0.2] : [0.3, 0.7]);
    const wrong = (t: string): number[] => (t === 'fwd' ? [0.4, 0.6] : [0.55, 0.45]);
    // Baseline right on 20 of 40; the other right on those 20 and 12 more, and it lacks video 39.
    const a = clipReport(
      labels,
      videos.map((v, i) => ({ ...v, probs: i < 20 ? right(v.truth) : wrong(v.truth) })),
    );
    const b = clipReport(
      labels,
      videos.slice(0, 39).map((v, i) => ({ ...v, probs: i < 32 ? right(v.truth) : wrong(v.truth) })),
    );
    await writeReport(join(root, 'mean'), a.report, a.predictions);
    await writeReport(join(root, 'lstm'), b.report, b.predictions);
    const c = await compareReports([join(root, 'mean'), join(root, 'lstm', 'metrics.json')]);
    expect(c.reports.map((r) => r.name)).toEqual(['mean', 'lstm']);
    const top1 = c.rows.find((r) => r.metric === 'top-1 accuracy')!;
    expect(top1.values).toEqual([0.5, 32 / 39]);
    expect(top1.differences[1]).toBeCloseTo(32 / 39 - 0.5, 12);
    expect(c.bootstrap).toHaveLength(1);
    const boot = c.bootstrap[0];
    expect(boot.shared).toBe(39);
    expect(boot.difference).toBeCloseTo(32 / 39 - 20 / 39, 12);
    expect(boot.ci[0]).toBeGreaterThan(0);
    expect(boot.ci[1]).toBeLessThan(0.6);
    const text = formatComparison(c);
    expect(text).toMatch(/^metric\s+mean\s+lstm\s+Δ lstm$/m);
    expect(text).toMatch(/^top-1 accuracy\s+0\.5000\s+0\.8205\s+\+0\.3205$/m);
    // Two classes: no report has a top-5 accuracy, so there is no row of dashes for it.
    expect(c.rows.map((r) => r.metric)).not.toContain('top-5 accuracy');
    expect(text).not.toMatch(/top-5/);
    expect(text).toMatch(
      /lstm - mean: accuracy \+0\.3077 on 39 shared videos, 95% CI \[\+0\.\d{4}, \+0\.\d{4}\] \(paired bootstrap, 1000 resamples, seed 0\)/,
    );
    // Same inputs, same numbers.
    expect(await compareReports([join(root, 'mean'), join(root, 'lstm')])).toEqual(c);
  });

  it('reads an older report, whose timing.backboneBackend named the engine or the tfjs backend', async () => {
    const root = tempDir('fw-compare-');
    const { report, predictions } = clipReport(
      ['fwd', 'rev'],
      [{ path: '/v/0.mp4', truth: 'fwd', probs: [0.8, 0.2] }],
    );
    for (const ran of ['onnx', 'wasm']) {
      report.timing = { startedAt: '2026-01-01T00:00:00.000Z', wallMs: 1, backboneBackend: ran };
      await writeReport(join(root, ran), report, predictions);
    }
    const onnx = (await loadReport(join(root, 'onnx'))).report;
    expect(onnx.timing.backboneEngine).toBe('onnx');
    expect(onnx.timing).not.toHaveProperty('backboneBackend');
    const wasm = (await loadReport(join(root, 'wasm'))).report;
    expect(wasm.timing).toMatchObject({ backboneEngine: 'tfjs', backboneBackend: 'wasm' });
    expect(reportMarkdown(wasm, predictions)).toContain('- backbone ran on: tfjs (wasm);');
  });

  it('refuses a folder without metrics.json', async () => {
    const root = tempDir('fw-compare-');
    await expect(compareReports([root, root])).rejects.toThrow(/Cannot read .*metrics\.json/);
    await expect(compareReports([join(root, 'missing'), root])).rejects.toThrow(/Report not found/);
  });
});
