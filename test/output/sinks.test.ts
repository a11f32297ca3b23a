import { appendFileSync, existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { csvRow, OUTPUT_SCHEMA } from '../../src/fs.js';
import { isDone, openCsv, openJsonl, settingsFileFor } from '../../src/output/sinks.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-output-');

/** A line output as framewise leaves it: its settings file names the schema. */
function framewiseOutput(path: string, text: string): void {
  writeFileSync(path, text);
  writeFileSync(settingsFileFor(path), JSON.stringify({ schema: OUTPUT_SCHEMA }));
}

describe('openJsonl()', () => {
  it('refuses an existing file without resume or force', async () => {
    const path = join(dir, 'exists.jsonl');
    framewiseOutput(path, '{"path":"a"}\n');
    await expect(openJsonl(path)).rejects.toThrow(UsageError);
    await expect(openJsonl(path)).rejects.toThrow(/--resume.*--force/);
  });

  it('resume reports the units written, and cuts a torn last line only when it writes', async () => {
    const path = join(dir, 'torn.jsonl');
    const text =
      '{"path":"a.mp4","clips":[]}\n{"path":"b.mp4","start":1,"end":2,"error":{"code":"CORRUPT","message":"x"}}\n{"path":"c.mp4","cl';
    framewiseOutput(path, text);
    const { sink, resume: state } = await openJsonl(path, { resume: true });
    expect(state.records).toBe(2);
    expect(state.truncatedBytes).toBe('{"path":"c.mp4","cl'.length);
    expect(isDone(state.done, { path: 'a.mp4' })).toBe(true);
    expect(isDone(state.done, { path: 'b.mp4', start: 1, end: 2 })).toBe(true);
    expect(isDone(state.done, { path: 'b.mp4' })).toBe(false); // another span of b.mp4
    expect(isDone(state.done, { path: 'c.mp4' })).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe(text); // nothing written yet
    await sink.writeLine(JSON.stringify({ path: 'c.mp4', clips: [] }));
    await sink.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.slice(0, 3).map((l) => JSON.parse(l).path)).toEqual(['a.mp4', 'b.mp4', 'c.mp4']);
    expect(lines[3]).toBe('');
  });

  it("force replaces framewise's output with the first record, and leaves it whole when none comes", async () => {
    const path = join(dir, 'force.jsonl');
    framewiseOutput(path, '{"path":"old"}\n');
    const idle = await openJsonl(path, { force: true, settings: { frames: 2 } });
    await idle.sink.close();
    expect(readFileSync(path, 'utf8')).toBe('{"path":"old"}\n');
    const { sink } = await openJsonl(path, { force: true, settings: { frames: 2 } });
    await sink.writeLine('{"path":"x"}');
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe('{"path":"x"}\n');
    expect(JSON.parse(readFileSync(settingsFileFor(path), 'utf8'))).toEqual({
      schema: OUTPUT_SCHEMA,
      frames: 2,
    });
  });

  it.each([
    ['a file with no settings file', (p: string) => writeFileSync(p, '{"path":"a"}\n')],
    [
      "an earlier framewise's output (settings without a schema)",
      (p: string) => {
        writeFileSync(p, '{"path":"a"}\n');
        writeFileSync(settingsFileFor(p), '{"command":"embed"}');
      },
    ],
    ['a file whose lines are not records', (p: string) => framewiseOutput(p, 'not json\n')],
  ])('--resume and --force touch nothing of %s', async (_name, make) => {
    const path = join(dir, `theirs-${Math.random()}.jsonl`);
    make(path);
    const before = readFileSync(path);
    for (const options of [{ resume: true }, { force: true }]) {
      await expect(openJsonl(path, options)).rejects.toThrow(
        /not an output that framewise wrote.*Nothing was touched/,
      );
    }
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('holds a lock while open: a second writer is refused, naming this pid', async () => {
    const path = join(dir, 'locked.jsonl');
    const first = await openJsonl(path);
    expect(JSON.parse(readFileSync(`${path}.lock`, 'utf8')).pid).toBe(process.pid);
    await expect(openJsonl(path, { resume: true })).rejects.toThrow(
      new RegExp(`being written by another framewise run \\(pid ${process.pid}`),
    );
    await first.sink.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
    // A lock left by a dead process is stale and taken over.
    writeFileSync(
      `${path}.lock`,
      JSON.stringify({ pid: 2 ** 22 + 12345, hostname: (await import('node:os')).hostname() }),
    );
    const second = await openJsonl(path, { resume: true });
    await second.sink.close();
    // So is an empty lock (a crash between its creation and its write) once it is a few seconds old.
    writeFileSync(`${path}.lock`, '');
    await expect(openJsonl(path, { resume: true })).rejects.toThrow(
      /being written by another framewise run \(an unknown process/,
    );
    utimesSync(`${path}.lock`, new Date(Date.now() - 10_000), new Date(Date.now() - 10_000));
    const third = await openJsonl(path, { resume: true });
    await third.sink.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('an unwritable path is a UsageError before anything is written', async () => {
    await expect(openJsonl(join(dir, 'no', 'such', 'dir', 'out.jsonl'))).rejects.toThrow(
      /Cannot write the output/,
    );
  });
});

describe('openCsv()', () => {
  it('resumes a CSV torn inside a quoted path that holds a newline: the torn row is cut, the rows before it are done', async () => {
    const path = join(dir, 'torn-quoted.csv');
    const first = await openCsv(path, ['path', 'label']);
    await first.sink.writeLine(csvRow(['dir/two\nlines.mp4', 'forward']));
    await first.sink.close();
    const whole = readFileSync(path, 'utf8');
    appendFileSync(path, '"dir/torn\nna'); // the crash came inside the quotes, just after the newline
    const second = await openCsv(path, ['path', 'label'], { resume: true });
    expect(second.resume.records).toBe(1);
    expect(second.resume.truncatedBytes).toBe(Buffer.byteLength('"dir/torn\nna'));
    expect(isDone(second.resume.done, { path: 'dir/two\nlines.mp4' })).toBe(true);
    await second.sink.writeLine(csvRow(['dir/torn\nname.mp4', 'reversed']));
    await second.sink.close();
    expect(readFileSync(path, 'utf8')).toBe(`${whole}"dir/torn\nname.mp4",reversed\n`);
  });

  it('quotes fields and resumes from the path column', async () => {
    expect(csvRow(['a,b', 'say "hi"', 1])).toBe('"a,b","say ""hi""",1');
    const path = join(dir, 'out.csv');
    const first = await openCsv(path, ['path', 'label']);
    await first.sink.writeLine(csvRow(['dir/a, b.mp4', 'forward']));
    await first.sink.close();
    appendFileSync(path, 'dir/c.mp4,for');
    const second = await openCsv(path, ['path', 'label'], { resume: true });
    expect(isDone(second.resume.done, { path: 'dir/a, b.mp4' })).toBe(true);
    expect(second.resume.records).toBe(1);
    await second.sink.writeLine(csvRow(['dir/c.mp4', 'forward']));
    await second.sink.close();
    expect(readFileSync(path, 'utf8')).toBe('path,label\n"dir/a, b.mp4",forward\ndir/c.mp4,forward\n');
    // Spans come back from the start and end columns (empty: no span).
    const spans = join(dir, 'spans.csv');
    const header = ['path', 'label', 'start', 'end'];
    const third = await openCsv(spans, header);
    await third.sink.writeLine(csvRow(['v.mp4', 'x', 0.5, 1]));
    await third.sink.writeLine(csvRow(['w.mp4', 'x', '', '']));
    await third.sink.close();
    const fourth = await openCsv(spans, header, { resume: true });
    expect(isDone(fourth.resume.done, { path: 'v.mp4', start: 0.5, end: 1 })).toBe(true);
    expect(isDone(fourth.resume.done, { path: 'v.mp4', start: 0, end: 0.5 })).toBe(false);
    expect(isDone(fourth.resume.done, { path: 'w.mp4' })).toBe(true);
    await fourth.sink.close();
    // Another header is not this command's CSV.
    await expect(openCsv(path, ['path', 'score'], { resume: true })).rejects.toThrow(
      /not an output that framewise wrote/,
    );
  });
});
