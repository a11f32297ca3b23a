/**
 * One inference worker of the pool (see `pool.ts`). It owns its own tfjs backend (the wasm
 * backend is single-threaded in Node, so one backend per thread is how wasm uses several
 * cores), builds the backbone once from the artifacts in `workerData`, and then embeds
 * frames: uint8 RGB [N, S, S, 3] in a transferred ArrayBuffer, float32 [N, D] back in a
 * transferred ArrayBuffer. Running the backbone over the N = B*T frames of a batch at once
 * is exactly TimeDistributed(backbone), since the backbone sees every frame on its own.
 *
 * This file runs as compiled JavaScript only (`dist/model/worker.js`): Node 20 cannot load
 * a `.ts` worker, so `pool.ts` points at the build output even when tests run from source.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './backend.js';
import type { FromWorker, SerializedError, ToWorker, WorkerInit } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('framewise: model/worker.js must run as a worker thread');
const init = workerData as WorkerInit;

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function serialize(error: unknown): SerializedError {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, code: (error as { code?: string }).code, stack: error.stack };
  }
  return { name: 'Error', message: String(error) };
}

type Backbone = { predict(x: tf.Tensor): tf.Tensor | tf.Tensor[] } | tf.GraphModel;

async function load(): Promise<{ model: Backbone; backend: { name: string; reason: string } }> {
  const backend = await selectBackend(init.backend);
  const handler = tf.io.fromMemory(init.artifacts);
  if (init.format === 'graph') return { model: await tf.loadGraphModel(handler), backend };
  return { model: await tf.loadLayersModel(handler), backend };
}

/** float32 [n, D] for uint8 RGB frames [n, S, S, 3]. Synchronous: no await inside tidy. */
function embedFrames(model: Backbone, frames: Uint8Array, n: number): Float32Array {
  const S = init.inputSize;
  return tf.tidy(() => {
    const x = tf.tensor4d(frames, [n, S, S, 3], 'int32').toFloat(); // [n, S, S, 3]
    const scale = tf.tensor1d(init.preprocess.scale);
    const offset = tf.tensor1d(init.preprocess.offset);
    const input = x.mul(scale).add(offset); // broadcast over the channel axis
    let y: tf.Tensor;
    if (model instanceof tf.GraphModel) {
      const out = init.outputNode ? model.execute(input, init.outputNode) : model.predict(input);
      y = Array.isArray(out) ? out[0] : (out as tf.Tensor);
    } else {
      const out = model.predict(input);
      y = Array.isArray(out) ? out[0] : out;
    }
    const flat = y.reshape([n, -1]); // [n, D]: pooled features, whatever the layer's rank
    if (flat.shape[1] !== init.dim) throw new Error(`worker: backbone gave ${flat.shape[1]} features per frame, expected ${init.dim}`);
    return flat.dataSync() as Float32Array;
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  let loaded: Awaited<ReturnType<typeof load>>;
  try {
    loaded = await load();
  } catch (error) {
    post({ type: 'fatal', error: serialize(error) });
    return;
  }
  const { model, backend } = loaded;
  // Frame bytes of one backbone call; bounds activation memory inside this worker.
  const frameBytes = init.inputSize * init.inputSize * 3;
  port!.on('message', (message: ToWorker) => {
    if (message.type !== 'embed') return;
    const t0 = performance.now();
    try {
      const { frames: n, data, byteOffset } = message;
      const out = new Float32Array(n * init.dim); // [n, D]
      for (let start = 0; start < n; start += init.maxFrames) {
        const count = Math.min(init.maxFrames, n - start);
        const view = new Uint8Array(data, byteOffset + start * frameBytes, count * frameBytes);
        out.set(embedFrames(model, view, count), start * init.dim);
      }
      post({ type: 'result', id: message.id, data: out.buffer, ms: performance.now() - t0 }, [out.buffer]);
    } catch (error) {
      post({ type: 'error', id: message.id, error: serialize(error) });
    }
  });
  post({ type: 'ready', backend, loadMs: performance.now() - started });
}

void main();
