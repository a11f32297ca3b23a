/**
 * Outputs as a careful user and an unlucky one meet them, through the built CLI on generated
 * videos: the unit of work is a (path, start, end) span; --force and --resume touch only what
 * framewise wrote (by what its marker says); every check comes before the output is opened;
 * a run holds a lock on its output; a write error is one line and exit 3.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../fixtures.js';
import { assertBuilt, CLI, jsonl, ROOT, runCli, startCli } from './helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-owned-');
const video = join(dir, 'scene.mp4');
const spans = join(dir, 'spans.csv');
const fast = ['--frames', '2', '--no-cache', '--quiet'];
/** A pid that no process has: above the kernel's pid_max limit of 2^22. */
const DEAD_PID = 2 ** 22 + 7;

beforeAll(() => {
  assertBuilt();
  copyFileSync(fixture('arrow/forward/fadeto-cell.mp4'), video); // 3 s
  writeFileSync(spans, `path,label,start,end\nscene.mp4,a,0,1\nscene.mp4,a,1,2\nscene.mp4,a,2,3\n`);
});

const spanOf = (r: { start?: number; end?: number }): string => `${r.start}-${r.end}`;

describe('a span is the unit of work', () => {
  it('three spans of one video, stopped after the first record: --resume does the two missing', async () => {
    const out = join(dir, 'spans.jsonl');
    const full = await runCli(['embed', spans, '--out', out, ...fast]);
    expect(full.code, full.stderr).toBe(0);
    const records = jsonl<{ start: number; end: number }>(readFileSync(out, 'utf8'));
    expect(records.map(spanOf)).toEqual(['0-1', '1-2', '2-3']);
    // What a kill after the first record leaves.
    writeFileSync(out, `${readFileSync(out, 'utf8').split('\n')[0]}\n`);
    const resumed = await runCli(['embed', spans, '--out', out, ...fast.slice(0, -1), '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/2 ok, 0 failed, 1 skipped/);
    expect(jsonl<{ start: number; end: number }>(readFileSync(out, 'utf8')).map(spanOf)).toEqual([
      '0-1',
      '1-2',
      '2-3',
    ]);
  });

  it('with --sampling fps or window, each span is sampled inside itself, not over the whole video', async () => {
    for (const [sampling, clips] of [
      ['fps:2', 1],
      ['window:0.5/0.5', 2],
    ] as const) {
      const out = join(dir, `spans-${sampling.replace(/\W/g, '-')}.jsonl`);
      const r = await runCli(['embed', spans, '--out', out, '--sampling', sampling, ...fast]);
      expect(r.code, r.stderr).toBe(0);
      const records = jsonl<{
        start: number;
        end: number;
        clips: Array<{ start: number; end: number; timestamps: number[] }>;
      }>(readFileSync(out, 'utf8'));
      expect(records.map(spanOf)).toEqual(['0-1', '1-2', '2-3']);
      for (const record of records) {
        expect(record.clips.length, sampling).toBe(clips);
        expect(record.clips[0].start, sampling).toBe(record.start);
        for (const t of record.clips.flatMap((c) => c.timestamps))
          expect(t >= record.start && t < record.end, `${sampling}: ${t} in ${spanOf(record)}`).toBe(true);
      }
    }
  });

  it('npy: each span gets its own file and index row; the cache keys each span apart', async () => {
    const out = join(dir, 'spans-npy');
    const cache = ['--cache', join(dir, 'cache')];
    const r = await runCli([
      'embed',
      spans,
      '--out',
      out,
      '--format',
      'npy',
      ...fast.filter((f) => f !== '--no-cache'),
      ...cache,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const index = jsonl<{ npy: string; start: number; end: number; clips: Array<{ timestamps: number[] }> }>(
      readFileSync(join(out, 'index.jsonl'), 'utf8'),
    );
    expect(index.map(spanOf)).toEqual(['0-1', '1-2', '2-3']);
    expect(new Set(index.map((row) => row.npy)).size).toBe(3);
    expect(
      readdirSync(out)
        .filter((n) => n.endsWith('.npy'))
        .sort(),
    ).toEqual(index.map((row) => row.npy).sort());
    // From the cache, each span gets its own entry back (its own timestamps).
    const again = await runCli([
      'embed',
      spans,
      '--out',
      out,
      '--format',
      'npy',
      '--force',
      '--frames',
      '2',
      ...cache,
    ]);
    expect(again.stderr).toMatch(/3 from cache/);
    const cached = jsonl<{ clips: Array<{ timestamps: number[] }> }>(
      readFileSync(join(out, 'index.jsonl'), 'utf8'),
    );
    expect(cached.map((row) => row.clips[0].timestamps)).toEqual(index.map((row) => row.clips[0].timestamps));
    expect(new Set(cached.map((row) => JSON.stringify(row.clips[0].timestamps))).size).toBe(3);
  });
});

describe('--force and --resume touch only what framewise wrote', () => {
  it("eval --force leaves a user's exp/ folder that holds a metrics.json", async () => {
    const exp = join(dir, 'exp');
    mkdirSync(exp);
    writeFileSync(join(exp, 'metrics.json'), '{"loss": 0.12}');
    writeFileSync(join(exp, 'ckpt.pt'), 'weights');
    const r = await runCli([
      'eval',
      fixture('arrow/test.csv'),
      '--model',
      join(ROOT, 'samples', 'model'),
      '--out',
      exp,
      '--force',
      '--quiet',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a report folder that framewise wrote/);
    expect(readdirSync(exp).sort()).toEqual(['ckpt.pt', 'metrics.json']);
  });

  it("split --force and embed --format npy --force leave folders that only hold a file of the marker's name", async () => {
    for (const [name, marker, args] of [
      ['mysplit', 'split.json', (out: string) => ['split', fixture('arrow'), '--out', out, '--force']],
      [
        'mynpy',
        'index.jsonl',
        (out: string) => ['embed', video, '--out', out, '--format', 'npy', '--force', ...fast],
      ],
    ] as const) {
      const out = join(dir, name);
      mkdirSync(out);
      writeFileSync(join(out, marker), '{"mine": true}\n');
      writeFileSync(join(out, 'notes.txt'), 'keep');
      const r = await runCli(args(out));
      expect(r.code, r.stderr).toBe(2);
      expect(readdirSync(out).sort()).toEqual([marker, 'notes.txt'].sort());
    }
  });

  it('a mistyped --out clip.mp4 with --resume or --force leaves the video as it was', async () => {
    const clip = join(dir, 'clip.mp4');
    copyFileSync(video, clip);
    const before = readFileSync(clip);
    for (const flag of ['--resume', '--force']) {
      const r = await runCli(['embed', spans, '--out', clip, flag, ...fast]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/not an output that framewise wrote/);
    }
    expect(readFileSync(clip).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.startsWith('clip.mp4.'))).toEqual([]);
  });
});

describe('every check comes before the output is opened', () => {
  it('a broken backbone or --sampling fps:1001 with --force: exit 2, the old results and settings as they were', async () => {
    const out = join(dir, 'kept.jsonl');
    expect((await runCli(['embed', video, '--out', out, ...fast])).code).toBe(0);
    const before = readFileSync(out);
    const settings = readFileSync(`${out}.settings.json`);
    const broken = join(dir, 'broken.onnx');
    writeFileSync(broken, 'not a model');
    for (const extra of [
      ['--backbone', broken],
      ['--sampling', 'fps:1001'],
    ]) {
      const r = await runCli(['embed', video, '--out', out, '--force', ...fast, ...extra]);
      expect(r.code, r.stderr).toBe(2);
      expect(readFileSync(out).equals(before)).toBe(true);
      expect(readFileSync(`${out}.settings.json`).equals(settings)).toBe(true);
      // A plain --resume still works.
      expect((await runCli(['embed', video, '--out', out, '--resume', ...fast])).code).toBe(0);
    }
    // A new output: nothing at all, no settings file either.
    const fresh = join(dir, 'fresh.jsonl');
    expect((await runCli(['embed', video, '--out', fresh, '--sampling', 'fps:1001', ...fast])).code).toBe(2);
    expect(readdirSync(dir).filter((n) => n.startsWith('fresh'))).toEqual([]);
  });

  it('--out equal to an input video or manifest is refused, even with --force', async () => {
    const copy = join(dir, 'input.mp4');
    copyFileSync(video, copy);
    const manifest = readFileSync(spans);
    for (const [input, out] of [
      [copy, copy],
      [spans, spans],
    ]) {
      // --format jsonl: embed refuses an --out named .csv for its name alone; this is the input check.
      const r = await runCli(['embed', input, '--out', out, '--format', 'jsonl', '--force', ...fast]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/is one of the inputs/);
    }
    expect(readFileSync(copy).equals(readFileSync(video))).toBe(true);
    expect(readFileSync(spans).equals(manifest)).toBe(true);
  });

  it('embed --format npy --force replaces the folder atomically: a failed run leaves it whole', async () => {
    const out = join(dir, 'npy-force');
    expect((await runCli(['embed', video, '--out', out, '--format', 'npy', ...fast])).code).toBe(0);
    const files = readdirSync(out).sort();
    const broken = join(dir, 'broken2.onnx');
    writeFileSync(broken, 'not a model');
    const r = await runCli([
      'embed',
      video,
      '--out',
      out,
      '--format',
      'npy',
      '--force',
      '--backbone',
      broken,
      ...fast,
    ]);
    expect(r.code).toBe(2);
    expect(readdirSync(out).sort()).toEqual(files);
    const again = await runCli(['embed', spans, '--out', out, '--format', 'npy', '--force', ...fast]);
    expect(again.code, again.stderr).toBe(0);
    expect(jsonl(readFileSync(join(out, 'index.jsonl'), 'utf8'))).toHaveLength(3);
    expect(readdirSync(dir).filter((n) => n.startsWith('.npy-force'))).toEqual([]);
  });

  it.each([[[]], [['--force']]])(
    '--out /dev/null %j simply works: no settings file, no lock (it was refused as existing)',
    async (force: string[]) => {
      // Compared with what was there before: an older framewise (as root) may have left one.
      const sidecar = '/dev/null.settings.json';
      const before = existsSync(sidecar) ? statSync(sidecar).mtimeMs : undefined;
      const r = await runCli(['embed', video, '--out', '/dev/null', ...force, ...fast]);
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(sidecar) ? statSync(sidecar).mtimeMs : undefined).toBe(before);
      expect(existsSync('/dev/null.lock')).toBe(false);
    },
  );
});

describe('a lock on the output', () => {
  it("a second writer is refused, naming the first one's pid; a dead writer's lock is taken over", async () => {
    const out = join(dir, 'locked.jsonl');
    const lock = `${out}.lock`;
    const first = startCli(['embed', fixture('arrow/forward'), '--out', out, '--concurrency', '1', ...fast]);
    const until = Date.now() + 20_000;
    while (!existsSync(lock) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const second = await runCli(['embed', fixture('arrow/forward'), '--out', out, '--resume', ...fast]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`being written by another framewise run (pid ${first.child.pid}`);
    expect((await first.done).code).toBe(0);
    expect(existsSync(lock)).toBe(false);
    const paths = jsonl<{ path: string }>(readFileSync(out, 'utf8')).map((r) => r.path);
    expect(new Set(paths).size).toBe(paths.length);
    // kill -9 leaves the lock; its pid is dead, so the next run takes it over.
    writeFileSync(lock, JSON.stringify({ pid: DEAD_PID, hostname: (await import('node:os')).hostname() }));
    const after = await runCli(['embed', video, '--out', out, '--force', ...fast]);
    expect(after.code, after.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  it('a folder left by a writer killed during its final write is removed by the next write', async () => {
    const out = join(dir, 'split-out');
    const stale = join(dir, `.split-out.${DEAD_PID}.0badc0de.tmp`);
    mkdirSync(stale);
    writeFileSync(join(stale, 'train.csv'), 'half');
    const r = await runCli(['split', fixture('arrow'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(stale)).toBe(false);
  });
});

describe('write errors', () => {
  it('/dev/full, as --out or as stdout: one line, exit 3', async () => {
    const asOut = await runCli(['embed', video, '--out', '/dev/full', '--force', ...fast]);
    expect(asOut.code).toBe(3);
    expect(asOut.stderr.trim()).toMatch(
      /^framewise: Cannot write \/dev\/full: no space left on the device \(ENOSPC\)\.$/,
    );
    // stderr to the captured pipe, stdout to /dev/full.
    const shell = `node ${JSON.stringify(CLI)} embed ${JSON.stringify(video)} --out - ${fast.join(' ')} 2>&1 > /dev/full; echo "exit $?"`;
    const text = execFileSync('sh', ['-c', shell], { encoding: 'utf8' });
    expect(text.trim().split('\n')).toEqual([
      expect.stringMatching(/^framewise: Cannot write stdout: no space left on the device \(ENOSPC\)\.$/),
      'exit 3',
    ]);
  });

  const canMount =
    process.getuid?.() === 0 &&
    (() => {
      try {
        const probe = tempDir('fw-mount-');
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
        execFileSync('umount', [probe]);
        return true;
      } catch {
        return false;
      }
    })();

  it.skipIf(!canMount)(
    'a full disk: exit 3, whole records only, and --resume completes once there is space',
    async () => {
      const disk = join(dir, 'disk');
      mkdirSync(disk);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', disk]);
      try {
        const out = join(disk, 'out.jsonl');
        const args = [
          'embed',
          fixture('arrow/forward'),
          '--out',
          out,
          '--frames',
          '2',
          '--no-cache',
          '--quiet',
        ];
        const full = await runCli(args);
        expect(full.code).toBe(3);
        expect(full.stderr).toMatch(
          /Cannot write .*out\.jsonl: no space left on the device \(ENOSPC\)\. The records written before are whole/,
        );
        expect(full.stderr).not.toMatch(/\n\s+at /);
        const text = readFileSync(out, 'utf8');
        expect(text.endsWith('\n')).toBe(true);
        const written = jsonl(text).length;
        expect(written).toBeGreaterThan(0);
        execFileSync('mount', ['-o', 'remount,size=4m', disk]);
        const resumed = await runCli([...args, '--resume']);
        expect(resumed.code, resumed.stderr).toBe(0);
        const paths = jsonl<{ path: string }>(readFileSync(out, 'utf8')).map((r) => r.path);
        expect(paths).toHaveLength(readdirSync(fixture('arrow/forward')).length);
        expect(new Set(paths).size).toBe(paths.length);
      } finally {
        execFileSync('umount', [disk]);
      }
    },
  );
});
