/**
 * The published types, as a TypeScript consumer meets them: a strict `nodenext` project with
 * `skipLibCheck: false` that imports the package root and each subpath (`framewise/ingest`,
 * `framewise/model`, `framewise/evaluation`) compiles with no error. tfjs's own declarations do
 * not compile that way (they need the DOM library), so the public declarations must never
 * reach them: the tfjs objects framewise hands out are typed by its own structural types
 * (src/model/types.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from './cli/helpers.js';
import { tempDir } from './helpers.js';

beforeAll(assertBuilt);

/** A consumer that uses the entries' types the way a user does. */
const CONSUMER = [
  "import * as framewise from 'framewise';",
  "import * as ingest from 'framewise/ingest';",
  "import * as model from 'framewise/model';",
  "import * as evaluation from 'framewise/evaluation';",
  "import type { EmbedResult, ErrorRecord, TrainOptions, FrameEmbedder } from 'framewise';",
  "import type { ProbeResult, ClipPlan } from 'framewise/ingest';",
  "import type { HeadClassifier, LayersModelLike, TrainHeadOptions } from 'framewise/model';",
  "import type { MetricsReport } from 'framewise/evaluation';",
  'export const api = { framewise, ingest, model, evaluation };',
  'export type Used = [EmbedResult, ErrorRecord, TrainOptions, FrameEmbedder, ProbeResult, ClipPlan];',
  'export type Model = [HeadClassifier, LayersModelLike, TrainHeadOptions, MetricsReport];',
  'export async function probs(head: HeadClassifier, x: Float32Array): Promise<number> {',
  '  const layer = new model.TimeDistributed({ layer: head.model });',
  '  return (await head.predict(x, [1, 1, x.length])).length + layer.name.length;',
  '}',
  '',
].join('\n');

describe('the published types', () => {
  it('compile in a strict nodenext consumer with skipLibCheck: false, root and subpaths, without tfjs', () => {
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
    writeFileSync(join(dir, 'index.ts'), CONSUMER);
    const run = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--listFiles'],
      { encoding: 'utf8', cwd: dir },
    );
    const lines = run.stdout.split('\n');
    expect(lines.filter((line) => /error TS\d+/.test(line))).toEqual([]);
    expect(run.status).toBe(0);
    // The program holds framewise's declarations and none of tfjs's.
    expect(lines).toContain(join(ROOT, 'dist', 'model', 'index.d.ts'));
    expect(lines.filter((line) => line.includes('/@tensorflow/'))).toEqual([]);
  }, 60_000);
});
