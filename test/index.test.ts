/**
 * The package entry is a promise to users: every runtime name here is public API, and any
 * change to the list is a deliberate one (update this test and the README's Library section).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as framewise from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '..');

const PUBLIC = [
  'BACKBONES', 'EmbeddingCache', 'FfmpegError', 'FramewiseError', 'IngestError', 'ModelError', 'QueueError', 'ShapeError', 'TimeDistributed',
  'UsageError', 'aggregateScores', 'buildHead', 'classifyCsvRow', 'classifyRecord', 'clipMetrics', 'compareReports',
  'createFrameEmbedder', 'createPipeline', 'discoverInputs', 'embedRecord', 'evaluate', 'exportEndToEnd', 'exportOnnx', 'extractClips',
  'formatComparison', 'frameMetrics', 'isErrorRecord', 'loadClassifier', 'loadModel', 'npyFile', 'npyIndexRecord',
  'parseSampling', 'planClips', 'probe', 'saveModel', 'selectHeadBackend', 'splitDataset', 'startWorker', 'topK', 'train', 'trainHead',
  'writeReport', 'writeSplit',
];

describe('the package entry', () => {
  it('exports exactly the public names, at most 43 at run time', () => {
    expect(Object.keys(framewise).sort()).toEqual([...PUBLIC].sort());
    expect(PUBLIC.length).toBeLessThanOrEqual(43);
  });

  it('the package loads no engine and no queue client until they must run (a cached local run never loads tfjs)', () => {
    // In a child, on the built JavaScript, as a user runs it: tfjs is loaded with require, so it shows in require.cache.
    const script = [
      "import { createRequire } from 'node:module';",
      "await import('./dist/index.js');",
      "await import('./dist/tasks/index.js');",
      "await import('./dist/output/index.js');",
      "const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('@tensorflow') || k.includes('bullmq') || k.includes('ioredis'));",
      'console.log(loaded.length);',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(out.trim()).toBe('0');
  });
});
