/**
 * The first use of a backbone on a machine (an empty cache folder): converting it to ONNX
 * takes seconds. The progress line says so, the summary's time counts it, and Ctrl-C during
 * it exits 130 within 2 s and leaves no partial file in the cache.
 */
import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, startCli } from './helpers.js';
import { tempDir } from '../helpers.js';

beforeAll(assertBuilt);

const PREPARING = 'framewise: preparing mobilenet_v2 for ONNX Runtime, once';

/** Starts `embed` on one sample with an empty cache; `prepared` resolves at the preparing line. */
function coldEmbed(): { cache: string; run: ReturnType<typeof startCli>; prepared: Promise<number> } {
  const cache = tempDir('framewise-cold-');
  const run = startCli(['embed', 'samples/forward/zoom-pal.mp4', '--out', '-', '--frames', '4'], {
    FRAMEWISE_CACHE: cache,
  });
  let stderr = '';
  const prepared = new Promise<number>((resolve) => {
    run.child.stderr!.on('data', (c) => {
      stderr += c;
      if (stderr.includes(PREPARING)) resolve(performance.now());
    });
  });
  return { cache, run, prepared };
}

describe('a cold start (the backbone converted now)', () => {
  it('shows the preparing phase on the progress line, and counts it in the total', async () => {
    const { run, prepared } = coldEmbed();
    const seen = await prepared;
    const done = await run.done;
    const ended = performance.now();
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr.indexOf(PREPARING)).toBeLessThan(done.stderr.indexOf('framewise: 1 ok'));
    const total = Number(/framewise: 1 ok, .*, ([\d.]+)s\n/.exec(done.stderr)?.[1]);
    // The summary's time covers at least the conversion (from its line to the end).
    expect(total).toBeGreaterThanOrEqual((ended - seen) / 1000 - 0.2);
  });

  // 400 ms in: tfjs and the weights are loading (seconds of work that holds the event loop in
  // long stretches); 1000 ms in: building or folding the backbone.
  it.each([400, 1000])(
    'Ctrl-C %i ms into the preparing exits 130 within 2 s and leaves no partial file in the cache',
    async (after) => {
      const { cache, run, prepared } = coldEmbed();
      await prepared;
      await new Promise((r) => setTimeout(r, after));
      const sent = performance.now();
      run.child.kill('SIGINT');
      const done = await run.done;
      const took = performance.now() - sent;
      expect(done.code, done.stderr).toBe(130);
      expect(took).toBeLessThan(2000);
      const files = readdirSync(cache, { recursive: true }).map(String);
      expect(files.filter((f) => f.includes('.tmp'))).toEqual([]);
      // A converted model is in the cache only with its index, which is written last.
      expect(files.some((f) => f.endsWith('.onnx'))).toBe(files.some((f) => /^onnx\/.*\.json$/.test(f)));
    },
  );
});
