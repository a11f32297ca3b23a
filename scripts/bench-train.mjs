#!/usr/bin/env node
/**
 * Head-training benchmark (`npm run bench:train`): framewise's `trainHead` with the default
 * head (lstm, 256 units, batch 16, Adam) on generated random embeddings of the defaults'
 * shapes (522 clips, T = 16, D = 1280), against the PyTorch reference
 * `../shared/reference/train_torch.py` (or $FRAMEWISE_TORCH_SCRIPT) on 1 thread. The
 * contenders alternate, round after round; each round prints the median seconds per epoch of
 * each and their ratio, and the end prints the medians over rounds. Torch is skipped, with a
 * note, where `/usr/bin/python3` (or $FRAMEWISE_PYTHON) has no torch.
 *
 * framewise trains on every clip (`valSplit: 0`), as the reference does, so an epoch is
 * the same work on both sides; its seconds per epoch come from `onEpoch`.
 *
 *   node scripts/bench-train.mjs [--rounds N] [--epochs N] [--clips N] [--frames T] [--dim D]
 *                                [--backend auto|wasm|cpu|tensorflow] [--json]
 *
 * Debian's python3-torch links the system BLAS: with only the reference BLAS it is several
 * times slower than with OpenBLAS (`apt-get install libopenblas0-pthread`), so the line
 * printed for torch names the BLAS in use.
 *
 * Imports the built library from dist/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const dist = join(import.meta.dirname, '..', 'dist', 'index.js');
if (!existsSync(dist)) {
  process.stderr.write('bench-train: dist/ is missing; run `npm run build` first\n');
  process.exit(2);
}
const { trainHead } = await import(dist);
const { selectHeadBackend } = await import(
  join(import.meta.dirname, '..', 'dist', 'model', 'head-backend.js')
);

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    epochs: { type: 'string', default: '3' },
    clips: { type: 'string', default: '522' },
    frames: { type: 'string', default: '16' },
    dim: { type: 'string', default: '1280' },
    backend: { type: 'string', default: 'auto' },
    json: { type: 'boolean', default: false },
  },
});
const rounds = Math.max(3, Number(values.rounds));
const epochs = Math.max(1, Number(values.epochs));
const [n, t, d] = [Number(values.clips), Number(values.frames), Number(values.dim)];
const python = process.env.FRAMEWISE_PYTHON || '/usr/bin/python3';
const torchScript = resolve(
  process.env.FRAMEWISE_TORCH_SCRIPT ||
    join(import.meta.dirname, '..', '..', 'shared', 'reference', 'train_torch.py'),
);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function torchAvailable() {
  if (!existsSync(torchScript)) return `${torchScript} not found`;
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.error) return `${python}: ${probe.error.message}`;
  if (probe.status !== 0) return `${python} has no torch (apt-get install python3-torch)`;
  return undefined;
}

/** Which BLAS the system's libblas.so.3 resolves to (Debian's alternatives), for the record. */
function torchBlas() {
  try {
    const blas = realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3');
    return blas.includes('openblas') ? 'OpenBLAS' : `BLAS ${blas}`;
  } catch {
    return 'BLAS unknown';
  }
}

function runTorch() {
  // One thread for BLAS too: Debian's torch calls the system BLAS (OpenBLAS when installed),
  // whose own thread pool `torch.set_num_threads` does not always reach.
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const r = spawnSync(python, [torchScript, String(n), String(t), String(d), String(epochs), '1'], {
    encoding: 'utf8',
    env,
  });
  if (r.status !== 0)
    throw new Error(`train_torch.py failed (${r.status ?? r.signal}): ${r.stderr.slice(-500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()).s_per_epoch_median;
}

/** Random embeddings and labels, like the reference's `torch.randn` / `randint`. */
function makeData() {
  let state = 12345;
  const rand = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const embeddings = new Float32Array(n * t * d);
  for (let i = 0; i < embeddings.length; i += 2) {
    // Box-Muller: normal values, never exactly zero (a zero frame would be masked).
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const a = 2 * Math.PI * rand();
    embeddings[i] = r * Math.cos(a) || 1e-6;
    if (i + 1 < embeddings.length) embeddings[i + 1] = r * Math.sin(a) || 1e-6;
  }
  const labels = Array.from({ length: n }, () => (rand() < 0.5 ? 'a' : 'b'));
  return { embeddings, shape: [n, t, d], labels };
}

async function runFramewise(data) {
  const seconds = [];
  const head = await trainHead(data, {
    epochs,
    valSplit: 0,
    patience: epochs,
    seed: 1,
    onEpoch: (e) => seconds.push(e.seconds),
  });
  await head.dispose();
  return median(seconds);
}

const backend = await selectHeadBackend(values.backend);
const noTorch = torchAvailable();
console.log(
  `bench:train  ${n} clips, T=${t}, D=${d}, lstm(256), batch 16, ${epochs} epochs per round, ${rounds} rounds`,
);
console.log(`framewise backend: ${backend.name} (${backend.reason})`);
console.log(
  noTorch ? `torch: skipped (${noTorch})` : `torch: ${python} ${torchScript}, 1 thread, ${torchBlas()}`,
);
const data = makeData();
const results = [];
for (let round = 1; round <= rounds; round++) {
  // Alternate who goes first, so a drift in machine load does not favour one side.
  const order = round % 2 ? ['framewise', 'torch'] : ['torch', 'framewise'];
  const row = { round };
  for (const who of order) {
    if (who === 'torch') {
      if (!noTorch) row.torch = runTorch();
    } else {
      row.framewise = await runFramewise(data);
    }
  }
  if (row.torch) row.ratio = row.framewise / row.torch;
  results.push(row);
  console.log(
    `round ${round}: framewise ${row.framewise.toFixed(2)} s/epoch` +
      (row.torch ? `  torch ${row.torch.toFixed(2)} s/epoch  ratio ${row.ratio.toFixed(2)}x` : ''),
  );
}
const summary = {
  clips: n,
  T: t,
  D: d,
  epochs,
  rounds,
  backend: backend.name,
  framewiseSPerEpoch: median(results.map((r) => r.framewise)),
  torchSPerEpoch: noTorch ? null : median(results.map((r) => r.torch)),
  ratio: noTorch ? null : median(results.map((r) => r.ratio)),
  results,
};
console.log(
  `median: framewise ${summary.framewiseSPerEpoch.toFixed(2)} s/epoch` +
    (noTorch
      ? ''
      : `  torch ${summary.torchSPerEpoch.toFixed(2)} s/epoch  ratio ${summary.ratio.toFixed(2)}x (issue 33: <= 3x)`),
);
if (values.json) console.log(JSON.stringify(summary));
