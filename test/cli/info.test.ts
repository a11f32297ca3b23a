import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fixture } from '../fixtures.js';

const run = promisify(execFile);
const main = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

/** Runs the built CLI; resolves with the exit code and output whatever the code. */
async function framewise(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('framewise info', () => {
  it('prints the probe and the uniform plan as JSON', async () => {
    const { code, stdout } = await framewise('info', fixture('edge/counter.mp4'), '--frames', '4');
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.probe).toMatchObject({
      duration: 10,
      frameCount: 240,
      width: 160,
      height: 120,
      codec: 'h264',
    });
    expect(out.sampling).toEqual({ kind: 'uniform', frames: 4 });
    expect(out.clips).toEqual([
      { index: 0, start: 0, end: 10, timestamps: [1.25, 3.75, 6.25, 8.75], mask: [true, true, true, true] },
    ]);
  });

  it('plans fps and window sampling', async () => {
    const fps = JSON.parse(
      (await framewise('info', fixture('edge/counter.mp4'), '--frames', '10', '--sampling', 'fps:2')).stdout,
    );
    expect(fps.clips.map((c: { timestamps: number[] }) => c.timestamps[1])).toEqual([0.5, 5.5]);
    const win = JSON.parse(
      (await framewise('info', fixture('edge/counter.mp4'), '--frames', '2', '--sampling', 'window:4/3'))
        .stdout,
    );
    expect(win.clips.map((c: { start: number; end: number }) => [c.start, c.end])).toEqual([
      [0, 4],
      [3, 7],
      [6, 10],
    ]);
  });

  it('shows the rotation and display size of a rotated video', async () => {
    const out = JSON.parse((await framewise('info', fixture('edge/rotated.mp4'))).stdout);
    expect(out.probe).toMatchObject({ codedWidth: 320, codedHeight: 240, width: 240, height: 320 });
  });

  it.each([
    ['edge/text.mp4', 'NOT_A_VIDEO'],
    ['edge/zero-byte.mp4', 'EMPTY_FILE'],
    ['edge/missing.mp4', 'ENOENT'],
    ['edge/truncated-nomoov.mp4', 'CORRUPT'],
  ])('exits 1 with an error object on stdout for %s', async (path, errorCode) => {
    const { code, stdout } = await framewise('info', fixture(path));
    expect(code).toBe(1);
    const out = JSON.parse(stdout);
    expect(out.error.code).toBe(errorCode);
    expect(out.error.message).toContain(path.split('/')[1]);
  });

  it('exits 2 on a bad flag, naming it', async () => {
    const bad = await framewise('info', fixture('edge/counter.mp4'), '--sampling', 'fps:0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/for `--sampling` but received 'fps:0'/);
    expect((await framewise('info', fixture('edge/counter.mp4'), '--frames', 'x')).code).toBe(2);
  });

  it('over a manifest prints a table of the dataset, and --json the same for scripts', async () => {
    const table = await framewise('info', fixture('segments/test.jsonl'), '--concurrency', '3');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^4 videos, 4 probed, 0 will fail$/m);
    expect(table.stdout).toMatch(/^seconds per label\n {2}bars +\d+\.\ds$/m);
    expect(table.stdout).toMatch(/^duration {2}total \d+\.\ds, median \d+\.\ds$/m);
    expect(table.stdout).toMatch(/^resolutions\n {2}160x120 {2}4$/m);
    const json = JSON.parse((await framewise('info', fixture('segments/test.jsonl'), '--json')).stdout);
    expect(json).toMatchObject({
      videos: 4,
      probed: 4,
      labelling: 'frame',
      codecs: { h264: 4 },
      failures: [],
    });
    expect((await framewise('info', fixture('segments/test.jsonl'), '--concurrency', '0')).code).toBe(2);
  });
});
