/**
 * No function in src/ is longer than 80 lines. scripts/function-lengths.mjs measures every
 * function, method and arrow (nested ones count inside their parent) from its first token to
 * its closing brace. The scanner runs on the real src/ and, so that a broken scanner cannot
 * pass unseen, on a small synthetic folder whose lengths are known.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';
import { tempDir } from '../helpers.js';

const LIMIT = 80;

/**
 * `file:line name` of the functions allowed past the limit. Only a table of cases may go
 * here (a function that is one long literal of rows, read row by row); none does today.
 */
const EXEMPT: readonly string[] = [];

interface Long {
  file: string;
  line: number;
  lines: number;
  name: string;
}

function longFunctions(dir: string, over: number): Long[] {
  const run = spawnSync(
    process.execPath,
    [join(ROOT, 'scripts', 'function-lengths.mjs'), '--json', '--over', String(over), dir],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout) as Long[];
}

const dir = tempDir('framewise-function-lengths-');

/** A function whose text spans exactly `lines` lines. */
function fn(head: string, lines: number): string {
  return `${head} {\n${'  void 0;\n'.repeat(lines - 2)}}\n`;
}

describe('scripts/function-lengths.mjs', () => {
  it(`finds no function in src/ over ${LIMIT} lines`, () => {
    const long = longFunctions('src', LIMIT)
      .map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`)
      .filter((f) => !EXEMPT.some((e) => f.startsWith(`${e} `)));
    expect(long).toEqual([]);
  });

  it('measures declarations, methods and arrows, nested ones inside their parent, and names each', () => {
    writeFileSync(
      join(dir, 'a.ts'),
      [
        fn('export function exact()', LIMIT),
        fn('export function over()', LIMIT + 1),
        `class Box {\n${fn('  method()', LIMIT + 2)}}\n`,
        `const arrow = () => {\n${fn('  const inner = () =>', LIMIT + 1)}};\n`,
        `new Promise<void>((resolve) =>${fn('', LIMIT + 3).slice(0, -1)});\n`,
      ].join(''),
    );
    const found = longFunctions(dir, LIMIT).map(({ line, lines, name }) => ({ line, lines, name }));
    // a.ts, line by line: exact 1-80, over 81-161, Box 162-245 (method 163-244),
    // arrow 246-328 (inner 247-327), the Promise's callback 329-411.
    expect(found).toEqual([
      { line: 246, lines: LIMIT + 3, name: 'arrow' },
      { line: 329, lines: LIMIT + 3, name: '(callback of new Promise)' },
      { line: 163, lines: LIMIT + 2, name: 'Box.method' },
      { line: 81, lines: LIMIT + 1, name: 'over' },
      { line: 247, lines: LIMIT + 1, name: 'inner' },
    ]);
  });
});
