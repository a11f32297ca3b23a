/**
 * One inference worker of the pool (see `pool.ts`). It owns its own tfjs backend (the wasm
 * backend is single-threaded in Node, so one backend per thread is how wasm uses several
 * cores), starts it at once, builds the backbone once from the `load` message, then embeds
 * frames: uint8 RGB [N, S, S, 3] in a moved ArrayBuffer, float32 [N, D] back in a moved
 * ArrayBuffer. The work itself is the in-process embedder's `embedClipsLocal`, so both
 * paths compute the same thing; the N frames run as N clips of one frame, which is exactly
 * TimeDistributed(backbone) since the backbone sees every frame on its own.
 *
 * This file runs as compiled JavaScript only (`dist/engines/tfjs/worker.js`): Node 20 cannot load
 * a `.ts` worker, so `pool.ts` points at the build output even when tests run from source.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ModelError } from '../../errors.js';
import { selectBackend } from '../../tfjs/backend.js';
import { serializeError } from '../../thread-pool.js';
import { embedClipsLocal, prepareLocalModel, type LocalEmbedModel } from './embedder.js';
import { backboneFromArtifacts } from './fast.js';
import { PROTOCOL, type FromWorker, type ToWorker, type WorkerInit } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('framewise: engines/tfjs/worker.js must run as a worker thread');
const init = workerData as WorkerInit;

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

// Start the backend at once, while the main thread is still loading the backbone.
const backendReady =
  init.protocol === PROTOCOL
    ? selectBackend(init.backend)
    : Promise.reject(
        new Error(
          `dist/engines/tfjs/worker.js speaks protocol ${PROTOCOL}, the pool ${init.protocol}: the build is stale; run \`npm run build\``,
        ),
      );
backendReady.catch((error: unknown) => post({ type: 'fatal', error: serializeError(error) }));

let model: LocalEmbedModel | undefined;
let frameBytes = 0;

async function load(message: Extract<ToWorker, { type: 'load' }>): Promise<void> {
  const started = performance.now();
  try {
    const backend = await backendReady;
    const backbone = await backboneFromArtifacts(message.info, message);
    model = prepareLocalModel(backbone, { maxBatchFrames: init.maxBatchFrames });
    frameBytes = message.info.inputSize * message.info.inputSize * 3;
    post({ type: 'ready', backend, loadMs: performance.now() - started });
  } catch (error) {
    post({ type: 'fatal', error: serializeError(error) });
  }
}

function embed(message: Extract<ToWorker, { type: 'embed' }>): void {
  const t0 = performance.now();
  const { id, frames, data, byteOffset } = message;
  if (!model) {
    post({ type: 'error', id, error: serializeError(new ModelError('no backbone loaded')) });
    return;
  }
  const S = model.backbone.inputSize;
  const view = new Uint8Array(data, byteOffset, frames * frameBytes);
  embedClipsLocal(model, view, [frames, 1, S, S, 3]) // [N, 1, D]: N clips of one frame
    .then((out) =>
      post({ type: 'result', id, data: out.buffer as ArrayBuffer, ms: performance.now() - t0 }, [
        out.buffer as ArrayBuffer,
      ]),
    )
    .catch((error: unknown) => post({ type: 'error', id, error: serializeError(error) }));
}

// The pool sends `load` once, then one `embed` at a time, so calls never overlap here.
port.on('message', (message: ToWorker) => {
  if (message.type === 'load') void load(message);
  else if (message.type === 'embed') embed(message);
});
