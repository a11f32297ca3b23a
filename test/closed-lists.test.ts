/**
 * Closed lists of values are declared once, as a const array and the type derived from it
 * (as `FITS` is), and read from there: no other file of src/ spells one out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

/** Each list, the file that declares it, and the ways of spelling it out (a union, an array). */
const LISTS = [
  { name: 'HEAD_MODES', home: 'model/model-info.ts', values: ['clip', 'frame'] },
  { name: 'AGGREGATES', home: 'evaluation/aggregate.ts', values: ['mean', 'max'] },
  { name: 'SEEK_MODES', home: 'ingest/decode-plan.ts', values: ['exact', 'keyframe'] },
  { name: 'EXPORT_FORMATS', home: 'model/model-info.ts', values: ['onnx', 'tfjs'] },
];

function spellings(values: string[]): RegExp {
  const [a, b] = values.map((v) => `'${v}'`);
  return new RegExp(`${a} \\| ${b}|${b} \\| ${a}|\\[${a}, ${b}\\]|\\[${b}, ${a}\\]`);
}

const files = readdirSync(SRC, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: relative(SRC, join(SRC, f)), text: readFileSync(join(SRC, f), 'utf8') }));

describe('closed lists', () => {
  it.each(LISTS)('$name is spelled out only in $home', ({ home, values }) => {
    const where = files.filter(({ text }) => spellings(values).test(text)).map(({ file }) => file);
    expect(where).toEqual([home]);
  });
});
