/**
 * The published types, as a TypeScript consumer meets them: a strict `nodenext` project with
 * `skipLibCheck: false` compiles `import * as framewise from 'framewise'` against
 * dist/index.d.ts. framewise's own declarations must have no error. tfjs's declarations have
 * errors of their own under `skipLibCheck: false`, so which of framewise's public declaration
 * files pull them in is a closed list: today the building blocks of `src/model` (a head is a
 * tfjs `LayersModel`, `TimeDistributed` a tfjs `Layer`), which belong under a `framewise/model`
 * subpath. A new file on the list is a regression; emptying it makes the root self-contained.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from './cli/helpers.js';
import { tempDir } from './helpers.js';

/** The dist declaration files that name tfjs types, reached from dist/index.d.ts. */
const TFJS_AT_THE_ROOT = [
  'dist/model/classifier.d.ts',
  'dist/model/heads.d.ts',
  'dist/model/heads/entry.d.ts',
  'dist/model/layers.d.ts',
  'dist/tfjs/tf.d.ts',
  'dist/tfjs/time-distributed.d.ts',
];

beforeAll(assertBuilt);

describe('the published types', () => {
  it('compile in a strict nodenext consumer with skipLibCheck: false; only the listed files reach tfjs', () => {
    const dir = tempDir('framewise-consumer-');
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'framewise'));
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const compilerOptions = {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['index.ts'] }));
    writeFileSync(
      join(dir, 'index.ts'),
      [
        "import * as framewise from 'framewise';",
        "import type { EmbedResult, ErrorRecord, TrainOptions } from 'framewise';",
        'export const api: typeof framewise = framewise;',
        'export type Used = [EmbedResult, ErrorRecord, TrainOptions];',
        '',
      ].join('\n'),
    );
    const run = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--explainFiles'],
      { encoding: 'utf8', cwd: dir },
    );
    const errors = run.stdout.split('\n').filter((line) => /\): error TS\d+/.test(line));
    // Every error is inside tfjs's own declarations, none in framewise's or the consumer's.
    expect(errors.filter((line) => !line.includes('node_modules/@tensorflow/'))).toEqual([]);
    // The files of framewise's dist that the consumer's program holds, and those that name tfjs.
    const dist = join(ROOT, 'dist');
    const files = run.stdout
      .split('\n')
      .filter((line) => !line.startsWith(' ') && line.endsWith('.d.ts'))
      .map((line) => join(dir, line))
      .filter((file) => file.startsWith(`${dist}/`));
    expect(files).toContain(join(dist, 'index.d.ts'));
    const tfjs = files.filter(
      (file) =>
        /from '(@tensorflow\/[^']*|[^']*\/tf\.js)'/.test(readFileSync(file, 'utf8')) ||
        file.endsWith('/tfjs/tf.d.ts'),
    );
    expect(tfjs.map((file) => relative(ROOT, file)).sort()).toEqual(TFJS_AT_THE_ROOT);
  }, 60_000);
});
