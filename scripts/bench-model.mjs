#!/usr/bin/env node
/**
 * Model benchmark (run from the build: `npm run bench:model`):
 *   - backbone ms/frame at batch 1, 8 and 32 on the running backend;
 *   - our TimeDistributed against tf.layers.timeDistributed over the backbone, as a ratio;
 *   - the head's ms/clip (lstm 256 units, T = 16, D = 1280);
 *   - backbone load time, cold (nsfwjs, empty cache) and cached.
 * Prints one line per figure and a JSON summary last. `--reps N` sets the repetitions
 * (default 3); `--backend auto|wasm|cpu|tensorflow`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../dist/tfjs/backend.js';
import { loadBackbone, normalizeFrames } from '../dist/tfjs/registry.js';
import { TimeDistributed } from '../dist/tfjs/time-distributed.js';
import { buildHead, resolveHeadConfig } from '../dist/model/heads.js';

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '3' }, backend: { type: 'string', default: 'auto' } },
});
const reps = Math.max(1, Number(values.reps));
const backend = await selectBackend(values.backend);
console.log(`backend: ${backend.name} (${backend.reason})`);

/** Median wall time of `fn` over `reps` runs after one warm-up, in ms. */
async function time(fn, n = reps) {
  await fn();
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function run(make) {
  const y = make();
  await y.data();
  y.dispose();
}

const summary = { backend: backend.name };
const cacheDir = mkdtempSync(join(tmpdir(), 'framewise-bench-model-'));
try {
  let t0 = performance.now();
  const cold = await loadBackbone('mobilenet_v2', { cacheDir });
  summary.loadColdMs = Math.round(performance.now() - t0);
  cold.dispose();
  t0 = performance.now();
  const backbone = await loadBackbone('mobilenet_v2', { cacheDir });
  summary.loadCachedMs = Math.round(performance.now() - t0);
  console.log(
    `load mobilenet_v2: cold ${summary.loadColdMs} ms, cached ${summary.loadCachedMs} ms (fromCache ${backbone.fromCache})`,
  );

  summary.backboneMsPerFrame = {};
  for (const batch of [1, 8, 32]) {
    const x = tf.tidy(() =>
      normalizeFrames(tf.randomUniform([batch, 224, 224, 3], 0, 255, 'float32', 1), '0..1'),
    );
    const ms = await time(
      () => run(() => tf.tidy(() => backbone.embed(x))),
      batch === 32 ? Math.min(reps, 2) : reps,
    );
    x.dispose();
    summary.backboneMsPerFrame[batch] = +(ms / batch).toFixed(1);
    console.log(`backbone batch ${batch}: ${(ms / batch).toFixed(1)} ms/frame`);
  }

  const clip = tf.tidy(() =>
    normalizeFrames(tf.randomUniform([1, 8, 224, 224, 3], 0, 255, 'float32', 2), '0..1'),
  );
  const ours = new TimeDistributed({ layer: backbone.layersModel });
  const theirs = tf.layers.timeDistributed({ layer: backbone.layersModel });
  const oursMs = await time(() => run(() => ours.apply(clip)), Math.min(reps, 2));
  const theirsMs = await time(() => run(() => theirs.apply(clip)), Math.min(reps, 2));
  clip.dispose();
  summary.timeDistributed = {
    oursMs: Math.round(oursMs),
    tfjsMs: Math.round(theirsMs),
    speedup: +(theirsMs / oursMs).toFixed(2),
  };
  console.log(
    `TimeDistributed over [1, 8, 224, 224, 3]: ours ${oursMs.toFixed(0)} ms, tf.layers.timeDistributed ${theirsMs.toFixed(0)} ms, ratio ${(theirsMs / oursMs).toFixed(2)}x`,
  );
  backbone.dispose();

  summary.headMsPerClip = {};
  for (const type of ['lstm', 'mean']) {
    const head = buildHead(resolveHeadConfig({ type }), { dim: 1280, classes: 5 }, 1);
    const x = tf.randomUniform([32, 16, 1280], 0, 1, 'float32', 3);
    const ms = await time(() => run(() => head.predict(x)));
    x.dispose();
    head.dispose();
    summary.headMsPerClip[type] = +(ms / 32).toFixed(2);
    console.log(
      `head ${type}${type === 'mean' ? '' : ' (256 units)'}, batch 32 x T 16: ${(ms / 32).toFixed(2)} ms/clip`,
    );
  }
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
}
console.log(JSON.stringify(summary));
