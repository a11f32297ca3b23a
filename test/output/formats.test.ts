import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ErrorRecord } from '../../src/embedding/runner.js';
import { UsageError } from '../../src/errors.js';
import {
  chooseFormat,
  formatsHelp,
  formatsOf,
  openWriter,
  OUTPUT_FORMATS,
} from '../../src/output/formats.js';
import type { OutputFormatEntry } from '../../src/output/formats/entry.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-formats-');
const failed = (path: string): ErrorRecord => ({
  path,
  start: 1,
  end: 2,
  error: { code: 'FFMPEG', message: 'broken' },
});

describe('chooseFormat()', () => {
  it("takes --format, else the extension of --out, else the command's first format", () => {
    expect(chooseFormat('classify', 'r.csv')).toBe('csv');
    expect(chooseFormat('classify', 'R.CSV')).toBe('csv');
    expect(chooseFormat('classify', '-')).toBe('jsonl');
    expect(chooseFormat('classify', 'r.csv', 'jsonl')).toBe('jsonl');
    expect(chooseFormat('classify', '-', 'csv')).toBe('csv');
    expect(chooseFormat('embed', 'e.jsonl')).toBe('jsonl');
    expect(chooseFormat('embed', 'emb', 'npy')).toBe('npy');
  });

  it('refuses a format the command does not write, by name or by extension, and a folder on stdout', () => {
    expect(() => chooseFormat('embed', 'e.jsonl', 'csv')).toThrow(
      /Expected one of 'jsonl', 'npy' for `--format` but received 'csv'/,
    );
    expect(() => chooseFormat('classify', 'r', 'npy')).toThrow(UsageError);
    expect(() => chooseFormat('embed', 'emb.csv')).toThrow(
      /names a csv file, which embed does not write; it writes 'jsonl', 'npy'/,
    );
    expect(() => chooseFormat('embed', '-', 'npy')).toThrow(/writes a folder; `--out -` is not possible/);
  });

  it('lists per command exactly the formats that have a writer for it', () => {
    expect(formatsOf('embed')).toEqual(['jsonl', 'npy']);
    expect(formatsOf('classify')).toEqual(['jsonl', 'csv', 'vtt', 'srt']);
    for (const [, entry] of OUTPUT_FORMATS.entries()) expect(entry.help.length).toBeGreaterThan(0);
  });
});

describe('openWriter()', () => {
  it("writes each format's record, and a resumed output reports the spans it holds", async () => {
    const csv = join(dir, 'r.csv');
    const writer = await openWriter('classify', 'csv', csv, {});
    await writer.write(failed('a.mp4'));
    await writer.close();
    expect(readFileSync(csv, 'utf8')).toBe(
      'path,label,score,topk,error_code,error_message,warnings,start,end\na.mp4,,,,FFMPEG,broken,,1,2\n',
    );
    const again = await openWriter('classify', 'csv', csv, { resume: true });
    expect(again.resume.records).toBe(1);
    await again.close();

    const jsonl = join(dir, 'e.jsonl');
    const lines = await openWriter('embed', 'jsonl', jsonl, {});
    await lines.write(failed('b.mp4'));
    await lines.close();
    expect(JSON.parse(readFileSync(jsonl, 'utf8'))).toEqual(failed('b.mp4'));

    const folder = join(dir, 'npy');
    const npy = await openWriter('embed', 'npy', folder, {});
    await npy.write(failed('c.mp4'));
    await npy.close();
    expect(JSON.parse(readFileSync(join(folder, 'index.jsonl'), 'utf8'))).toEqual(failed('c.mp4'));
    expect(readdirSync(folder).filter((f) => f.endsWith('.npy'))).toEqual([]);
  });

  it('refuses a format the command does not write, before touching anything', async () => {
    const out = join(dir, 'x.npy-out');
    await expect(openWriter('classify', 'npy', out, {})).rejects.toThrow(/classify does not write npy/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('OUTPUT_FORMATS, the one list of formats', () => {
  it("takes a new format from one line: --format's checks and help, the extension rule and the writer read it", async () => {
    const written: string[] = [];
    const paths: OutputFormatEntry = {
      help: 'the paths, one per line',
      extension: '.paths',
      writers: {
        classify: async () => ({
          resume: { done: new Set(), records: 0, truncatedBytes: 0 },
          write: async (r) => void written.push(r.path),
          close: async () => {},
        }),
      },
    };
    OUTPUT_FORMATS.register('paths', paths);
    try {
      expect(formatsOf('classify')).toEqual(['jsonl', 'csv', 'vtt', 'srt', 'paths']);
      expect(formatsHelp('classify')).toMatch(/\| paths \(the paths, one per line\)$/);
      expect(chooseFormat('classify', 'out.paths')).toBe('paths');
      expect(() => chooseFormat('embed', 'out.paths')).toThrow(
        /names a paths file, which embed does not write/,
      );
      const writer = await openWriter('classify', 'paths' as never, 'out.paths', {});
      await writer.write(failed('d.mp4'));
      expect(written).toEqual(['d.mp4']);
    } finally {
      OUTPUT_FORMATS.unregister('paths');
    }
    expect(() => chooseFormat('classify', '-', 'paths')).toThrow(/Expected one of 'jsonl', 'csv'/);
  });
});
