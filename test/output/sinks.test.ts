import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { csvRow } from '../../src/fs.js';
import { openCsv, openJsonl } from '../../src/output/sinks.js';

const dir = mkdtempSync(join(tmpdir(), 'fw-output-'));

describe('openJsonl()', () => {
  it('refuses an existing file without resume or force', async () => {
    const path = join(dir, 'exists.jsonl');
    writeFileSync(path, '{"path":"a"}\n');
    await expect(openJsonl(path)).rejects.toThrow(UsageError);
    await expect(openJsonl(path)).rejects.toThrow(/--resume.*--force/);
  });

  it('resume cuts a torn last line and reports the paths already written', async () => {
    const path = join(dir, 'torn.jsonl');
    writeFileSync(path, '{"path":"a.mp4","clips":[]}\n{"path":"b.mp4","error":{"code":"CORRUPT","message":"x"}}\n{"path":"c.mp4","cl');
    const { sink, resume: state } = await openJsonl(path, { resume: true });
    expect(state.records).toBe(2);
    expect(state.truncatedBytes).toBe('{"path":"c.mp4","cl'.length);
    expect(state.done.has('a.mp4') && state.done.has(resolve('b.mp4'))).toBe(true);
    expect(state.done.has('c.mp4')).toBe(false);
    await sink.writeLine(JSON.stringify({ path: 'c.mp4', clips: [] }));
    await sink.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.slice(0, 3).map((l) => JSON.parse(l).path)).toEqual(['a.mp4', 'b.mp4', 'c.mp4']);
    expect(lines[3]).toBe('');
  });

  it('force overwrites', async () => {
    const path = join(dir, 'force.jsonl');
    writeFileSync(path, 'old\n');
    const { sink } = await openJsonl(path, { force: true });
    await sink.writeLine('{"path":"x"}');
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe('{"path":"x"}\n');
  });

  it('an unwritable path is a UsageError before anything is written', async () => {
    await expect(openJsonl(join(dir, 'no', 'such', 'dir', 'out.jsonl'))).rejects.toThrow(/Cannot write the output/);
  });
});

describe('openCsv()', () => {
  it('quotes fields and resumes from the path column', async () => {
    expect(csvRow(['a,b', 'say "hi"', 1])).toBe('"a,b","say ""hi""",1');
    const path = join(dir, 'out.csv');
    const first = await openCsv(path, ['path', 'label']);
    await first.sink.writeLine(csvRow(['dir/a, b.mp4', 'forward']));
    await first.sink.close();
    appendFileSync(path, 'dir/c.mp4,for');
    const second = await openCsv(path, ['path', 'label'], { resume: true });
    expect([...second.resume.done]).toContain('dir/a, b.mp4');
    expect(second.resume.records).toBe(1);
    await second.sink.close();
    expect(readFileSync(path, 'utf8')).toBe('path,label\n"dir/a, b.mp4",forward\n');
  });
});

