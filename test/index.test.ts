/**
 * The package entry is a promise to users: every runtime name here is public API, and any
 * change to the list is a deliberate one (update this test and docs/library.md). The building
 * blocks are under the subpaths `framewise/ingest`, `framewise/model` and `framewise/evaluation`;
 * their old root names stay, deprecated, for one minor version.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from './cli/helpers.js';
import { tempDir } from './helpers.js';
import * as framewise from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '..');

/** The root's own names: the tasks, the records, the errors, the engines' factory. */
const ROOT_NAMES = [
  'BACKBONES',
  'EmbeddingCache',
  'FfmpegError',
  'FramewiseError',
  'IngestError',
  'ModelError',
  'QueueError',
  'ShapeError',
  'UsageError',
  'classifyCsvRow',
  'classifyRecord',
  'createFrameEmbedder',
  'createPipeline',
  'discoverInputs',
  'embedRecord',
  'evaluate',
  'isErrorRecord',
  'loadClassifier',
  'npyFile',
  'npyIndexRecord',
  'startWorker',
  'train',
];

/** The building blocks, by subpath. Each is also at the root until 0.3, deprecated. */
const SUBPATHS: Record<string, string[]> = {
  ingest: ['extractClips', 'parseSampling', 'planClips', 'probe'],
  model: [
    'TimeDistributed',
    'buildHead',
    'exportEndToEnd',
    'exportOnnx',
    'loadModel',
    'saveModel',
    'trainHead',
  ],
  evaluation: [
    'clipMetrics',
    'compareReports',
    'formatComparison',
    'frameMetrics',
    'splitDataset',
    'writeReport',
    'writeSplit',
  ],
};

const PUBLIC = [...ROOT_NAMES, ...Object.values(SUBPATHS).flat()];

/** Runs an ES module in a consumer project whose node_modules/framewise is this package, as installed. */
function inConsumer(script: string): string {
  const dir = tempDir('framewise-consumer-');
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'framewise'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(dir, 'main.js'), script);
  return execFileSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8' });
}

beforeAll(assertBuilt);

describe('the package entry', () => {
  it('exports exactly the public names, at most 40 at run time', () => {
    expect(Object.keys(framewise).sort()).toEqual([...PUBLIC].sort());
    expect(PUBLIC.length).toBeLessThanOrEqual(40);
  });

  it('re-exports every name under its own name: no `a as b` hides a clash', () => {
    const entries = [
      'index.ts',
      ...['tasks', 'embedding', 'engines', 'ingest', 'model', 'evaluation', 'output', 'runners'].map(
        (d) => `${d}/index.ts`,
      ),
    ];
    const renamed = entries.flatMap((file) => {
      let text: string;
      try {
        text = readFileSync(resolve(ROOT, 'src', file), 'utf8');
      } catch {
        return []; // a folder without an index
      }
      return [...text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)].flatMap((m) =>
        m[1]
          .split(',')
          .map((s) => s.trim())
          .filter((s) => /\sas\s/.test(s))
          .map((s) => `${file}: ${s}`),
      );
    });
    expect(renamed).toEqual([]);
  });

  it('the task API loads no engine until a backbone must run, and nothing loads the queue client until a run across machines', () => {
    // In a child, on the built JavaScript, as a user runs it: tfjs and ioredis are loaded with require, so they show in require.cache.
    const script = [
      "import { createRequire } from 'node:module';",
      'const loaded = (re) => Object.keys(createRequire(import.meta.url).cache).filter((k) => re.test(k)).length;',
      "await import('./dist/tasks/index.js');",
      "await import('./dist/output/index.js');",
      "await import('./dist/runners/index.js');",
      'const tasks = loaded(/@tensorflow|ioredis/);',
      "await import('./dist/index.js');",
      'console.log(tasks, loaded(/ioredis/), loaded(/@tensorflow/) > 0);',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    // The whole entry loads tfjs (the model exports), never the queue client.
    expect(out.trim()).toBe('0 0 true');
  });

  it('framewise/ingest, /model and /evaluation export their building blocks, by package name', () => {
    const script = [
      'const out = {};',
      ...Object.keys(SUBPATHS).map((s) => `out.${s} = Object.keys(await import('framewise/${s}')).sort();`),
      'console.log(JSON.stringify(out));',
    ].join('\n');
    expect(JSON.parse(inConsumer(script))).toEqual(
      Object.fromEntries(Object.entries(SUBPATHS).map(([s, names]) => [s, [...names].sort()])),
    );
  });

  it("the old root names of the building blocks are the subpaths' own, and deprecated", async () => {
    const subpaths = {
      ingest: await import('../src/ingest/index.js'),
      model: await import('../src/model/index.js'),
      evaluation: await import('../src/evaluation/index.js'),
    } as Record<string, Record<string, unknown>>;
    for (const [sub, names] of Object.entries(SUBPATHS))
      for (const name of names)
        expect((framewise as Record<string, unknown>)[name]).toBe(subpaths[sub][name]);
    // Every re-export at the root from a subpath's entry carries `@deprecated` (types too), and no other does.
    const file = resolve(ROOT, 'src', 'index.ts');
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const deprecated: string[] = [];
    for (const node of source.statements) {
      if (!ts.isExportDeclaration(node) || !node.exportClause || !ts.isNamedExports(node.exportClause))
        continue;
      for (const e of node.exportClause.elements)
        if (ts.getJSDocDeprecatedTag(e)) deprecated.push(e.name.text);
    }
    const values = deprecated.filter((n) => n in framewise);
    expect(values.sort()).toEqual(Object.values(SUBPATHS).flat().sort());
  });

  it('framewise/ingest and framewise/evaluation load no tfjs; framewise/model does', () => {
    const script = [
      "import { createRequire } from 'node:module';",
      'const tfjs = () => Object.keys(createRequire(import.meta.url).cache).some((k) => /@tensorflow/.test(k));',
      "await import('framewise/ingest');",
      "await import('framewise/evaluation');",
      'const light = tfjs();',
      "await import('framewise/model');",
      'console.log(light, tfjs());',
    ].join('\n');
    expect(inConsumer(script).trim()).toBe('false true');
  });
});
