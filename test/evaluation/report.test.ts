import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { frameMetrics, precisionRecall } from '../../src/evaluation/metrics.js';
import { prSvg, reliabilitySvg } from '../../src/evaluation/plots.js';
import { clipReport } from './report-fixtures.js';
import {
  confusionLayout,
  confusionPng,
  curvesPng,
  curvesSvg,
  datasetFingerprint,
  reportMarkdown,
  shortLabel,
  worstConfusedPairs,
  writeReport,
  type MetricsReport,
  type PredictionRecord,
} from '../../src/evaluation/report.js';
import { tempDir } from '../helpers.js';

describe('datasetFingerprint()', () => {
  const entries = [
    { path: '/d/a/1.mp4', size: 10, label: 'a' },
    { path: '/d/b/2.mp4', size: 20, label: 'b' },
  ];
  it('does not depend on order or on where the dataset lives', () => {
    const f = datasetFingerprint(entries, '/d');
    expect(f).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(datasetFingerprint([...entries].reverse(), '/d')).toBe(f);
    expect(
      datasetFingerprint(
        entries.map((e) => ({ ...e, path: e.path.replace('/d/', '/moved/d/') })),
        '/moved/d',
      ),
    ).toBe(f);
  });
  it('changes with a size, a label or a path', () => {
    const f = datasetFingerprint(entries, '/d');
    expect(datasetFingerprint([entries[0], { ...entries[1], size: 21 }], '/d')).not.toBe(f);
    expect(datasetFingerprint([entries[0], { ...entries[1], label: 'a' }], '/d')).not.toBe(f);
    expect(datasetFingerprint([entries[0], { ...entries[1], path: '/d/b/3.mp4' }], '/d')).not.toBe(f);
  });
});

describe('worstConfusedPairs()', () => {
  it('lists off-diagonal cells by count, then share', () => {
    const pairs = worstConfusedPairs({
      labels: ['a', 'b', 'c'],
      matrix: [
        [5, 2, 0],
        [1, 1, 2],
        [0, 2, 9],
      ],
    });
    expect(pairs).toEqual([
      { trueLabel: 'b', predicted: 'c', count: 2, share: 0.5 },
      { trueLabel: 'a', predicted: 'b', count: 2, share: 2 / 7 },
      { trueLabel: 'c', predicted: 'b', count: 2, share: 2 / 11 },
      { trueLabel: 'b', predicted: 'a', count: 1, share: 0.25 },
    ]);
  });
});

describe('curvesPng()', () => {
  const history = [1, 2, 3, 4].map((epoch) => ({
    epoch,
    loss: 1 / epoch,
    acc: 0.5 + epoch / 10,
    valLoss: 1.2 / epoch,
    valAcc: 0.4 + epoch / 10,
  }));

  it('draws training solid and validation dashed per member, and rings each kept epoch', () => {
    const svg = curvesSvg([history, history.map((e) => ({ ...e, valLoss: null, valAcc: null }))], {
      best: [3, 2],
    });
    // Two panels (loss, accuracy); member 1 has train + val lines, member 2 (no split) train only.
    expect(svg.match(/<polyline/g)).toHaveLength(6);
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
    expect(svg.match(/<circle/g)).toHaveLength(4);
    expect(svg).toContain('member 2');
  });

  it('renders a PNG', async () => {
    const meta = await sharp(await curvesPng([history], { best: [4] })).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 900, height: 360 });
  });
});

describe('reportMarkdown() training section', () => {
  it("links the model folder's history and curves relative to the report, with each member's validation accuracy", () => {
    const { report: base } = clipReport(['a', 'b'], [{ path: '/v/a.mp4', truth: 'a', probs: [0.9, 0.1] }]);
    const report = {
      ...base,
      model: {
        ...base.model,
        training: {
          files: ['/w/model/curves.png', '/w/model/history-1.csv', '/w/model/history-2.csv'],
          valAcc: 0.9,
          members: [
            { seed: 1, valAcc: 0.8, bestEpoch: 3, epochs: 9 },
            { seed: 2, valAcc: 0.85, bestEpoch: 5, epochs: 11 },
          ],
        },
      },
    };
    const md = reportMarkdown(report, [], { reportDir: '/w/report' });
    expect(md).toContain(
      '- model folder: [curves.png](../model/curves.png), [history-1.csv](../model/history-1.csv), [history-2.csv](../model/history-2.csv)',
    );
    expect(md).toContain('![training curves](../model/curves.png)');
    expect(md).toContain('| member 2 | 2 | 5 of 11 | 85.0% |');
    expect(md).toContain('| ensemble (averaged) | – | – | 90.0% |');
    expect(reportMarkdown(base, [])).not.toContain('## Training');
  });
});

describe('confusionPng()', () => {
  it('renders a valid PNG of the laid-out size, with cells coloured by row share', async () => {
    const confusion = {
      labels: ['forward', 'reversed'],
      matrix: [
        [9, 1],
        [0, 10],
      ],
    };
    const png = await confusionPng(confusion);
    const meta = await sharp(png).metadata();
    const layout = confusionLayout(confusion.labels);
    expect(meta.format).toBe('png');
    expect([meta.width, meta.height]).toEqual([layout.width, layout.height]);
    // The diagonal cell of a perfect row is the darkest blue; an empty cell is near white.
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number): number[] => [
      ...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3),
    ];
    const corner = (i: number, j: number): number[] =>
      px(layout.left + j * layout.cell + 3, layout.top + i * layout.cell + 3);
    expect(corner(1, 1)).toEqual([8, 48, 107]);
    expect(corner(1, 0)[0]).toBeGreaterThan(240);
    expect(corner(0, 0)[2]).toBeLessThan(140);
  });

  it('stays readable for 50 classes: 24 px cells, bounded size', async () => {
    const labels = Array.from({ length: 50 }, (_, i) => `class_${i}_${'x'.repeat(i % 5)}`);
    const matrix = labels.map((_, i) => labels.map((_, j) => (i === j ? 100 : (i + j) % 9 === 0 ? 3 : 0)));
    const png = await confusionPng({ labels, matrix });
    const meta = await sharp(png).metadata();
    const layout = confusionLayout(labels);
    expect(layout.cell).toBe(24);
    expect([meta.width, meta.height]).toEqual([layout.width, layout.height]);
    expect(meta.width).toBeLessThan(2000);
  });

  it('shortLabel() keeps both ends of a long label', () => {
    expect(shortLabel('short')).toBe('short');
    const s = shortLabel('a_rather_long_class_name_number_7_with_suffix');
    expect(s).toHaveLength(28);
    expect(s).toBe('a_rather_long_…7_with_suffix');
  });
});

describe('writeReport()', () => {
  it('writes metrics.json, predictions.jsonl, report.md and confusion.png', async () => {
    const dir = tempDir('fw-report-');
    const { report, predictions } = clipReport(
      ['fwd', 'rev'],
      [
        { path: '/v/a.mp4', truth: 'fwd', probs: [0.9, 0.1] },
        { path: '/v/b.mp4', truth: 'rev', probs: [0.6, 0.4] },
        { path: '/v/c.mp4', truth: 'rev', probs: [0.2, 0.8] },
      ],
      [{ path: '/v/bad.mp4', label: 'fwd', code: 'CORRUPT', message: 'moov atom not found' }],
    );
    const files = await writeReport(join(dir, 'out'), report, predictions);
    expect(JSON.parse(await readFile(files.metrics, 'utf8'))).toEqual(report);
    const lines = (await readFile(files.predictions, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatchObject({ path: '/v/b.mp4', label: 'fwd', trueLabel: 'rev', correct: false });
    const md = await readFile(files.markdown, 'utf8');
    expect(md).toContain('## Summary');
    expect(md).toMatch(/\| top-1 accuracy \| 66\.7% \| 66\.7% \|/);
    expect(md).toMatch(/## Worst-confused pairs[\s\S]*\| rev \| fwd \| 1 \| 50\.0% \|/);
    expect(md).toMatch(/## Misclassified videos \(1\)[\s\S]*\| \/v\/b\.mp4 \| rev \| fwd \| 0\.600 \|/);
    expect(md).toMatch(
      /## Failed videos \(1\)[\s\S]*\| \/v\/bad\.mp4 \| fwd \| CORRUPT \| moov atom not found \|/,
    );
    const meta = await sharp(files.confusion).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBe(confusionLayout(['fwd', 'rev']).width);
  });

  it('with the samples, draws pr.png and reliability.png beside confusion.png, and report.md links them', async () => {
    const dir = tempDir('fw-report-plots-');
    const preds = [
      { path: '/v/a.mp4', truth: 'fwd', probs: [0.9, 0.1] },
      { path: '/v/b.mp4', truth: 'rev', probs: [0.6, 0.4] },
      { path: '/v/c.mp4', truth: 'rev', probs: [0.2, 0.8] },
    ];
    const { report, predictions } = clipReport(['fwd', 'rev'], preds);
    const samples = preds.map((p) => ({ truth: p.truth === 'fwd' ? 0 : 1, probs: p.probs }));
    const files = await writeReport(join(dir, 'out'), report, predictions, { samples });
    for (const png of [files.pr!, files.reliability!])
      expect((await sharp(png).metadata()).format).toBe('png');
    const md = await readFile(files.markdown, 'utf8');
    expect(md).toContain(
      '![confusion matrix](confusion.png)\n\n![precision-recall per class](pr.png)\n\n![reliability diagram](reliability.png)',
    );
    // The AP of each class is in pr.png's legend. fwd: a (0.9, fwd), b (0.6, rev), c: 1. rev: c (0.8), b (0.4), then a: 1.
    const svg = prSvg(precisionRecall(samples, ['fwd', 'rev']));
    expect(svg).toContain('fwd (AP 1.000)');
    expect(svg).toContain('rev (AP 1.000)');
    expect(reliabilitySvg(report.metrics.video!.calibration, report.metrics.video!.ece)).toContain(
      `ECE ${report.metrics.video!.ece.toFixed(3)}`,
    );
  });

  it('reportMarkdown() summarises a frame-mode report and lists mistagged videos', () => {
    const labels = ['red', 'blue'];
    const m = frameMetrics([{ truth: [0, 0, 1, 1], pred: [0, 1, 1, 1] }], { labels });
    const { report } = clipReport(labels, [{ path: '/v/a.mp4', truth: 'red', probs: [1, 0] }]);
    const frameReport: MetricsReport = { ...report, mode: 'frame', metrics: { frame: m } };
    const predictions: PredictionRecord[] = [
      {
        path: '/v/seg.mp4',
        trueLabel: 'red',
        frames: [0, 1, 1, 1].map((p, i) => ({
          t: i,
          label: labels[p],
          score: 0.9,
          trueLabel: labels[i < 2 ? 0 : 1],
        })),
      },
    ];
    const md = reportMarkdown(frameReport, predictions);
    expect(md).toMatch(/\| frame accuracy \| 75\.0% \|/);
    expect(md).toContain('- backbone ran on: onnx; head ran on: wasm (test);');
    expect(md).toMatch(/\| segmental edit score \| 1\.000 \|/);
    expect(md).toMatch(/\| F1@50 \| /);
    expect(md).toMatch(/## Videos with mistagged frames \(1\)[\s\S]*\| \/v\/seg\.mp4 \| 75\.0% \| 4 \|/);
  });

  it('rejects a report without the schema tag', async () => {
    await expect(writeReport('/tmp/x', { schema: 'nope' } as never, [])).rejects.toThrow(
      /Expected 'framewise\.metrics\/1' for `report\.schema` but received 'nope'/,
    );
  });
});
