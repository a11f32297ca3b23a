import { createReadStream, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetInfo } from '../../src/tasks/info.js';
import { fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

describe('datasetInfo()', () => {
  it('sums up a frame dataset: seconds per label from its segments, durations, resolutions, frame rates, codecs', async () => {
    const manifest = fixture('segments/test.jsonl');
    const rows = readFileSync(manifest, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { segments: Array<{ start: number; end: number; label: string }> });
    const seconds: Record<string, number> = {};
    for (const r of rows)
      for (const s of r.segments) seconds[s.label] = (seconds[s.label] ?? 0) + s.end - s.start;
    const info = await datasetInfo(manifest);
    expect(info).toMatchObject({
      videos: rows.length,
      probed: rows.length,
      labelling: 'frame',
      failures: [],
    });
    for (const [label, s] of Object.entries(seconds)) expect(info.labels[label]).toBeCloseTo(s, 3);
    const total = rows.reduce((t, r) => t + r.segments[r.segments.length - 1].end, 0);
    expect(info.duration.total).toBeCloseTo(total, 1);
    expect(info.resolutions).toEqual({ '160x120': rows.length });
    expect(info.frameRates).toEqual({ '10': rows.length });
    expect(info.codecs).toEqual({ h264: rows.length });
  });

  it('counts videos per label, and lists the files that will fail with their codes', async () => {
    const dir = tempDir('fw-info-');
    mkdirSync(join(dir, 'good'));
    mkdirSync(join(dir, 'bad'));
    symlinkSync(fixture('edge/counter.mp4'), join(dir, 'good', 'counter.mp4'));
    symlinkSync(fixture('arrow/forward/zoom-pal.mp4'), join(dir, 'good', 'zoom.mp4'));
    for (const f of ['zero-byte.mp4', 'text.mp4', 'truncated-nomoov.mp4'])
      symlinkSync(fixture(`edge/${f}`), join(dir, 'bad', f));
    const info = await datasetInfo(dir, { concurrency: 3 });
    expect(info).toMatchObject({ videos: 5, probed: 2, labelling: 'clip', labels: { bad: 3, good: 2 } });
    expect(info.duration).toEqual({ total: 13, median: 6.5 }); // 10 s and 3 s
    expect(info.failures.map((f) => [f.path.split('/').pop(), f.code])).toEqual([
      ['text.mp4', 'NOT_A_VIDEO'],
      ['truncated-nomoov.mp4', 'CORRUPT'],
      ['zero-byte.mp4', 'EMPTY_FILE'],
    ]);
  });

  it.each([1, 3])('probes at most `concurrency` (%i) videos at once', async (concurrency) => {
    // Six videos over HTTP, each response held back 100 ms: the server sees how many are open at once.
    const open = new Map<string, number>();
    let most = 0;
    const server = createServer((req, res) => {
      const name = (req.url ?? '').slice(1);
      open.set(name, (open.get(name) ?? 0) + 1);
      most = Math.max(most, open.size);
      res.on('close', () => {
        const n = open.get(name)! - 1;
        if (n === 0) open.delete(name);
        else open.set(name, n);
      });
      const file = fixture('edge/counter.mp4');
      setTimeout(() => {
        res.writeHead(200, { 'Content-Length': statSync(file).size, 'Content-Type': 'video/mp4' });
        createReadStream(file).pipe(res);
      }, 100);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const info = await datasetInfo(
        Array.from({ length: 6 }, (_, i) => ({ path: `http://127.0.0.1:${port}/v${i}.mp4` })),
        { concurrency },
      );
      expect(info.probed).toBe(6);
      expect(most).toBe(concurrency);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
