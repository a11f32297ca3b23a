#!/usr/bin/env node
/**
 * Evaluation benchmark (`npm run bench:eval`): `framewise eval samples/labels.csv --model
 * samples/model --json` cold (an empty embedding cache: every video decoded and embedded) and
 * cached (the same cache again: no decode, no backbone), each a new process, alternating
 * round after round. Prints per round and as medians: the process's wall and CPU seconds and
 * `evaluate()`'s own wall time (`timing.wallMs` of the report).
 *
 *   node scripts/bench-eval.mjs [--rounds N] [--dataset CSV] [--model DIR]
 *
 * The backbone's one-time conversion for ONNX Runtime is done before the first round (it is
 * in ~/.cache/framewise, not the embedding cache), so "cold" is the embedding cache only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliArgs, cpuInfo, fmt, median, run } from './bench-lib.mjs';

const args = cliArgs();
const rounds = Math.max(3, args.positive('rounds', 3));
const root = path.resolve(import.meta.dirname, '..');
const dataset = args.value('dataset', path.join(root, 'samples', 'labels.csv'));
const model = args.value('model', path.join(root, 'samples', 'model'));
const cli = path.join(root, 'dist', 'cli', 'main.js');

async function evalOnce(cache) {
  const r = await run(process.execPath, [
    cli,
    'eval',
    dataset,
    '--model',
    model,
    '--cache',
    cache,
    '--json',
    '--quiet',
  ]);
  if (r.code !== 0) throw new Error(`eval exited ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
  const report = JSON.parse(r.stdout);
  return {
    wall: r.wall,
    cpu: r.cpu,
    evaluate: report.timing.wallMs / 1000,
    decoded: report.timing.videosDecoded,
  };
}

const { model: cpu, cores } = cpuInfo();
console.log(
  `bench:eval: ${path.relative(root, dataset)} with ${path.relative(root, model)}, ${rounds} rounds, ${cores} cores (${cpu}), load ${os.loadavg()[0].toFixed(1)}`,
);
const warm = mkdtempSync(path.join(os.tmpdir(), 'framewise-bench-eval-'));
await evalOnce(warm); // the backbone's conversion, once
rmSync(warm, { recursive: true, force: true });

const results = { cold: [], cached: [] };
for (let round = 1; round <= rounds; round++) {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'framewise-bench-eval-'));
  try {
    const cold = await evalOnce(cache);
    const cached = await evalOnce(cache);
    results.cold.push(cold);
    results.cached.push(cached);
    const line = (name, x) =>
      `${name} ${fmt(x.wall)} s wall, ${fmt(x.cpu)} CPU-s, evaluate() ${fmt(x.evaluate)} s, ${x.decoded} decoded`;
    console.log(`round ${round}: ${line('cold', cold)} | ${line('cached', cached)}`);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}
for (const [name, xs] of Object.entries(results)) {
  console.log(
    `median ${name}: ${fmt(median(xs.map((x) => x.wall)))} s wall, ${fmt(median(xs.map((x) => x.cpu)))} CPU-s, evaluate() ${fmt(median(xs.map((x) => x.evaluate)))} s`,
  );
}
