/**
 * One video's problem is that video's error record, and the run goes on, through the built
 * CLI on generated videos: a manifest span past the video's end, a plan too large for
 * memory, a folder in a manifest, a URL whose server refuses or never answers (ffprobe
 * under --timeout), a raw H.264 stream (processed), a file name that is not UTF-8 and a
 * folder or a file that cannot be read in a folder walk.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { COUNTER, fixture } from '../fixtures.js';
import { assertBuilt, CLI, jsonl, runCli, type CliRun } from './helpers.js';
import { tempDir } from '../helpers.js';

type Row = {
  path: string;
  decoder?: string;
  error?: { code: string; message: string };
  clips?: Array<{ mask: boolean[] }>;
};

const dir = tempDir('fw-per-video-');
const cache = join(dir, 'cache');
const { ffmpeg, ffprobe } = resolveBinaries();

function make(out: string, args: string[]): void {
  execFileSync(ffmpeg, ['-v', 'error', '-y', ...args, out]);
}

/** A loopback TCP port: `silent` accepts and never answers; otherwise nothing listens there. */
async function port(silent: boolean): Promise<{ port: number; server?: Server }> {
  const server = createServer((socket) => socket.on('error', () => undefined).resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address() as AddressInfo;
  if (silent) return { port: p, server };
  await new Promise((resolve) => server.close(resolve));
  return { port: p };
}

beforeAll(() => {
  assertBuilt();
  chmodSync(dir, 0o755);
}, 60_000);
// Before tempDir removes it: the tests leave files and folders there that nobody may read.
afterAll(() => {
  spawnSync('chmod', ['-R', 'u+rwx', dir]);
});

describe('a manifest whose rows fail one by one', () => {
  it('writes each row: a record or an error record with its own code, in order; the run goes on', async () => {
    const raw = join(dir, 'counter.h264');
    make(raw, ['-i', fixture(COUNTER.path), '-c', 'copy', '-f', 'h264']);
    const span = join(dir, 'span.mp4');
    copyFileSync(fixture(COUNTER.path), span);
    mkdirSync(join(dir, 'a-folder'));
    const refused = await port(false);
    const silent = await port(true);
    const manifest = join(dir, 'rows.csv');
    writeFileSync(
      manifest,
      [
        'path,label,start,end',
        `span.mp4,x,30,40`, // the counter is 10 s long
        `a-folder,x,,`,
        `http://127.0.0.1:${refused.port}/v.mp4,x,,`,
        `http://127.0.0.1:${silent.port}/v.mp4,x,,`,
        `counter.h264,x,,`,
        `${fixture(COUNTER.path)},x,1,3`,
      ].join('\n'),
    );
    const out = join(dir, 'rows.jsonl');
    const started = Date.now();
    const run = await runCli([
      'embed',
      manifest,
      '--out',
      out,
      '--cache',
      cache,
      '--frames',
      '4',
      '--timeout',
      '2',
      '--quiet',
    ]);
    silent.server!.close();
    expect(run.code, run.stderr).toBe(1);
    const rows = jsonl<Row>(readFileSync(out, 'utf8'));
    expect(rows.map((r) => r.error?.code ?? 'ok')).toEqual([
      'OUT_OF_RANGE',
      'EISDIR',
      'NETWORK',
      'TIMEOUT',
      'ok',
      'ok',
    ]);
    expect(rows[0].error!.message).toMatch(/the span 30-40 s lies outside the video \(0-10 s\)/);
    expect(rows[2].error!.message).toMatch(/cannot be reached \(Connection refused\)/);
    // --timeout bounds ffprobe too (it had 30 s whatever the flag said).
    expect(rows[3].error!.message).toMatch(/(ffprobe|libav) timed out after 2 s/);
    expect(Date.now() - started).toBeLessThan(25_000);
    // The raw stream is a video like any other; the CLI decoded it, and its record says so.
    expect(rows[4].clips![0].mask).toEqual([true, true, true, true]);
    expect([rows[4].decoder, rows[5].decoder]).toEqual(['cli', 'libav']);
    expect(run.stderr).toMatch(/2 ok, 4 failed \(EISDIR: 1, NETWORK: 1, OUT_OF_RANGE: 1, TIMEOUT: 1\)/);
  }, 60_000);
});

describe('a plan too large for memory', () => {
  it("is that video's TOO_LARGE record naming --sampling, not a RangeError; the next video is done", async () => {
    const long = join(dir, 'long', 'a-3-hours.mp4');
    mkdirSync(join(dir, 'long'));
    make(long, [
      '-f',
      'lavfi',
      '-i',
      'color=c=gray:s=16x16:r=1',
      '-t',
      '10800',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
    ]);
    make(join(dir, 'long', 'b-short.mp4'), [
      '-f',
      'lavfi',
      '-i',
      'testsrc=s=32x32:r=25',
      '-t',
      '0.1',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
    ]);
    const out = join(dir, 'long.jsonl');
    const run = await runCli([
      'embed',
      join(dir, 'long'),
      '--out',
      out,
      '--cache',
      cache,
      '--frames',
      '1',
      '--sampling',
      'fps:1000',
      '--quiet',
    ]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).not.toMatch(/RangeError|\n\s+at /);
    const rows = jsonl<Row>(readFileSync(out, 'utf8'));
    expect(rows.map((r) => r.error?.code ?? 'ok')).toEqual(['TOO_LARGE', 'ok']);
    expect(rows[0].error!.message).toMatch(
      /10,800,000 clips of 1 frames, 52,734 MiB of embeddings, over the limit of 128 MiB per video; .*--sampling fps:<n>/,
    );
  }, 60_000);
});

/**
 * A folder that cannot be read needs a user that permissions apply to: as root (where the
 * tests run) the CLI runs as `nobody` through setpriv, with its own readable copy of ffprobe
 * (the npm package's is not executable by others).
 */
const root = process.getuid?.() === 0;
const setpriv = spawnSync('setpriv', ['--version']).status === 0;

/** Runs node with `args` as a user that permissions apply to. */
async function asUser(args: string[], env: NodeJS.ProcessEnv): Promise<Pick<CliRun, 'code' | 'stderr'>> {
  const command = root
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, ...args]
    : [process.execPath, ...args];
  const child = spawn(command[0], command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  child.stdout!.resume();
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('a folder walk', () => {
  it.skipIf(root && !setpriv)(
    'lists a name that is not UTF-8, and a file and a folder it cannot read, as error records, and does the rest',
    async () => {
      const walk = join(dir, 'walk');
      mkdirSync(join(walk, 'a'), { recursive: true });
      mkdirSync(join(walk, 'locked'));
      copyFileSync(fixture(COUNTER.path), join(walk, 'a', 'ok.mp4'));
      copyFileSync(fixture(COUNTER.path), Buffer.from(`${walk}/a/caf\xe9.mp4`, 'latin1'));
      copyFileSync(fixture(COUNTER.path), join(walk, 'locked', 'x.mp4'));
      copyFileSync(fixture(COUNTER.path), join(walk, 'a', 'secret.mp4'));
      chmodSync(join(walk, 'locked'), 0);
      chmodSync(join(walk, 'a', 'secret.mp4'), 0);
      const work = join(dir, 'nobody');
      mkdirSync(work);
      chmodSync(work, 0o777);
      const probe = join(work, 'ffprobe');
      copyFileSync(ffprobe, probe);
      chmodSync(probe, 0o755);
      const out = join(work, 'walk.jsonl');
      // No embedding cache: the file that cannot be read meets ffprobe first, not the cache's read.
      const args = [CLI, 'embed', walk, '--out', out, '--no-cache', '--frames', '2', '--quiet'];
      const env = {
        ...process.env,
        HOME: work,
        FRAMEWISE_CACHE: join(work, 'cache'),
        FFMPEG_PATH: ffmpeg,
        FFPROBE_PATH: probe,
      };
      const run = await asUser(args, env);
      expect(run.code, run.stderr).toBe(1);
      const rows = jsonl<Row>(readFileSync(out, 'utf8'));
      expect(rows.map((r) => [r.path.slice(walk.length + 1), r.error?.code ?? 'ok'])).toEqual([
        ['a/caf\uFFFD.mp4', 'BAD_NAME'],
        ['a/ok.mp4', 'ok'],
        ['a/secret.mp4', 'EACCES'],
        ['locked', 'EACCES'],
      ]);
      expect(rows[0].error!.message).toMatch(/not valid UTF-8/);
      expect(rows[3].error!.message).toMatch(/a folder that cannot be read/);

      // A manifest it cannot read is the run's input: a usage error in one line, not a stack.
      const manifest = join(walk, 'list.csv');
      writeFileSync(manifest, 'path\na/ok.mp4\n');
      chmodSync(manifest, 0);
      const bad = await asUser(
        [CLI, 'embed', manifest, '--out', join(work, 'never.jsonl'), '--no-cache', '--quiet'],
        env,
      );
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toMatch(/^framewise: Cannot read the manifest .*list\.csv: EACCES\n/);
    },
    60_000,
  );
});
