/**
 * Crash safety through the built CLI: `kill -9` in the middle of a folder, then `--resume`:
 * every video appears exactly once and every line is complete JSON.
 */
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { linkScenes } from '../fixtures.js';
import { assertBuilt, jsonl, ROOT, runCli, startCli, waitForLines } from './helpers.js';
import { tempDir } from '../helpers.js';
import { modelId } from '../../src/tasks/evaluate.js';

const dir = tempDir('fw-cli-resume-');
const videos = join(dir, 'videos');

beforeAll(() => {
  assertBuilt();
  linkScenes(videos, 10);
});

describe('framewise embed --resume', () => {
  it('after kill -9 mid-folder, --resume gives every video exactly once', async () => {
    const out = join(dir, 'out.jsonl');
    const args = [
      'embed',
      videos,
      '--out',
      out,
      '--frames',
      '4',
      '--no-cache',
      '--concurrency',
      '1',
      '--quiet',
    ];
    const { child, done } = startCli(args);
    await waitForLines(out, 2, 180_000);
    child.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal).toBe('SIGKILL');
    const before = readFileSync(out, 'utf8');
    const written = jsonl<{ path: string }>(before); // throws if any complete line is torn
    expect(written.length).toBeGreaterThanOrEqual(2);
    expect(written.length).toBeLessThan(10);
    // A torn last line, as a crash in the middle of a write would leave, is cut on resume.
    appendFileSync(out, `{"path":"${join(videos, 'x')}`);
    const resumed = await runCli(args.slice(0, -1).concat('--resume'));
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(
      new RegExp(`${10 - written.length} ok, 0 failed, ${written.length} skipped`),
    );
    const lines = readFileSync(out, 'utf8');
    expect(lines.endsWith('\n')).toBe(true);
    const all = jsonl<{ path: string }>(lines);
    const paths = all.map((r) => r.path).sort();
    expect(paths).toEqual(
      readdirSync(videos)
        .map((v) => join(videos, v))
        .sort(),
    );
    expect(new Set(paths).size).toBe(10);
  });
});

describe('framewise embed and classify --resume with other settings', () => {
  it('is a usage error naming the difference, and the output is not touched', async () => {
    const out = join(dir, 'settings.jsonl');
    const two = readdirSync(videos)
      .slice(0, 2)
      .map((v) => join(videos, v));
    const first = await runCli(['embed', two[0], '--out', out, '--frames', '2', '--no-cache', '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    const before = readFileSync(out);
    const other = await runCli([
      'embed',
      ...two,
      '--out',
      out,
      '--frames',
      '3',
      '--no-cache',
      '--resume',
      '--quiet',
    ]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/Cannot resume .* with other settings .*frames 3 \(the output has 2\)/);
    expect(readFileSync(out).equals(before)).toBe(true);
    // Per-frame embeddings make another kind of record too.
    const frames = await runCli([
      'embed',
      ...two,
      '--out',
      out,
      '--frames',
      '2',
      '--frame-embeddings',
      '--no-cache',
      '--resume',
      '--quiet',
    ]);
    expect(frames.code).toBe(2);
    expect(frames.stderr).toMatch(/frameEmbeddings true \(the output has false\)/);
    // The same settings resume.
    const same = await runCli([
      'embed',
      ...two,
      '--out',
      out,
      '--frames',
      '2',
      '--no-cache',
      '--resume',
      '--quiet',
    ]);
    expect(same.code, same.stderr).toBe(0);
    expect(jsonl(readFileSync(out, 'utf8'))).toHaveLength(2);
  });

  it('classify: another model or --top-k is refused on resume (CSV)', async () => {
    const out = join(dir, 'labels.csv');
    const one = join(videos, readdirSync(videos)[0]);
    const model = join(ROOT, 'samples', 'model');
    const first = await runCli(['classify', one, '--model', model, '--out', out, '--no-cache', '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    // The model's id is the one eval reports show (it was a second id, of framewise.json).
    const { labels } = JSON.parse(readFileSync(join(model, 'framewise.json'), 'utf8')) as {
      labels: string[];
    };
    expect(JSON.parse(readFileSync(`${out}.settings.json`, 'utf8')).model).toBe(await modelId(model, labels));
    const before = readFileSync(out);
    const other = await runCli([
      'classify',
      one,
      '--model',
      model,
      '--out',
      out,
      '--top-k',
      '1',
      '--no-cache',
      '--resume',
      '--quiet',
    ]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/topK 1 \(the output has 5\)/);
    expect(readFileSync(out).equals(before)).toBe(true);
  });
});

describe('framewise embed --resume over an output of an earlier framewise', () => {
  it('resumes records that have only `backend` (the name of the engine), and the new records carry `engine`', async () => {
    const few = join(dir, 'few');
    linkScenes(few, 3);
    const out = join(dir, 'old.jsonl');
    const args = ['embed', few, '--out', out, '--frames', '4', '--quiet'];
    const made = await runCli(args);
    expect(made.code, made.stderr).toBe(0);
    const records = jsonl<Record<string, unknown>>(readFileSync(out, 'utf8'));
    expect(records.map((r) => r.engine)).toEqual(['onnx', 'onnx', 'onnx']);
    expect(records.every((r) => !('backend' in r))).toBe(true); // `backend` is the tfjs backend only
    // As framewise wrote it before `engine`: `backend` held the engine's name; the last video is missing.
    const old = records.slice(0, 2).map(({ engine, ...rest }) => ({ ...rest, backend: engine }));
    writeFileSync(out, old.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const resumed = await runCli([...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = jsonl<Record<string, unknown>>(readFileSync(out, 'utf8'));
    expect(after.slice(0, 2)).toEqual(old);
    expect(after).toHaveLength(3);
    expect(after[2]).toMatchObject({ path: records[2].path, engine: 'onnx' });
  });
});
