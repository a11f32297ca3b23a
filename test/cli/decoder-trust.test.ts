/**
 * Through the built CLI: a video the decoder fails on (a 4-bit bgr4 rawvideo swscale cannot
 * convert) and a text file are each that input's error record on both decoders, the batch
 * goes on and --resume passes them.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { COUNTER, fixture, makeBgr4 } from '../fixtures.js';
import { assertBuilt, jsonl, runCli } from './helpers.js';
import { tempDir } from '../helpers.js';

type Row = { path: string; decoder?: string; error?: { code: string; message: string } };

const dir = tempDir('fw-decoder-trust-');
const bgr4 = join(dir, 'a-bgr4.nut');
const counter = join(dir, 'b-counter.mp4');
const readme = join(dir, 'c-readme.txt');

beforeAll(() => {
  assertBuilt();
  makeBgr4(bgr4);
  copyFileSync(fixture(COUNTER.path), counter);
  writeFileSync(
    readme,
    Array.from(
      { length: 60 },
      (_, i) => `Line ${i} of a readme: framewise turns videos into clip embeddings.`,
    ).join('\n'),
  );
}, 60_000);

describe.each(['libav', 'cli'])('embed --decoder %s', (decoder) => {
  it('writes an unconvertible video and a text file as error records, does the rest, and --resume passes them', async () => {
    const out = join(dir, `${decoder}.jsonl`);
    const args = [
      'embed',
      bgr4,
      counter,
      readme,
      '--out',
      out,
      '--no-cache',
      '--frames',
      '2',
      '--decoder',
      decoder,
      '--quiet',
    ];
    const run = await runCli(args);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack: nothing fatal
    const rows = jsonl<Row>(readFileSync(out, 'utf8'));
    expect(rows.map((r) => r.error?.code ?? r.decoder)).toEqual(['UNSUPPORTED', decoder, 'NOT_A_VIDEO']);
    expect(rows[0].error!.message).toMatch(/cannot be converted to RGB/);
    expect(rows[2].error!.message).toMatch(/is tty, not a video format framewise opens/);
    const again = await runCli([...args.filter((a) => a !== '--quiet'), '--resume']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/3 skipped/);
    expect(jsonl<Row>(readFileSync(out, 'utf8'))).toEqual(rows);
  }, 60_000);
});
