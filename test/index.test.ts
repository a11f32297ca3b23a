/**
 * The package entry is a promise to users: every runtime name here is public API, and any
 * change to the list is a deliberate one (update this test and docs/library.md).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as framewise from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '..');

const PUBLIC = [
  'BACKBONES',
  'EmbeddingCache',
  'FfmpegError',
  'FramewiseError',
  'IngestError',
  'ModelError',
  'QueueError',
  'ShapeError',
  'TimeDistributed',
  'UsageError',
  'buildHead',
  'classifyCsvRow',
  'classifyRecord',
  'clipMetrics',
  'compareReports',
  'createFrameEmbedder',
  'createPipeline',
  'discoverInputs',
  'embedRecord',
  'evaluate',
  'exportEndToEnd',
  'exportOnnx',
  'extractClips',
  'formatComparison',
  'frameMetrics',
  'isErrorRecord',
  'loadClassifier',
  'loadModel',
  'npyFile',
  'npyIndexRecord',
  'parseSampling',
  'planClips',
  'probe',
  'saveModel',
  'splitDataset',
  'startWorker',
  'train',
  'trainHead',
  'writeReport',
  'writeSplit',
];

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
});
