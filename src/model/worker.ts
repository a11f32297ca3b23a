/**
 * One inference worker of the pool (see `pool.ts`). It owns its own tfjs backend (the wasm
 * backend is single-threaded in Node, so one backend per thread is how wasm uses several
 * cores), builds the backbone once from the artifacts in `workerData`, and then embeds
 * frames: uint8 RGB [N, S, S, 3] in a moved ArrayBuffer, float32 [N, D] back in a moved
 * ArrayBuffer. The work itself is the in-process embedder's `embedClipsLocal`, so both
 * paths compute the same thing; the N frames run as N clips of one frame, which is exactly
 * TimeDistributed(backbone) since the backbone sees every frame on its own.
 *
 * This file runs as compiled JavaScript only (`dist/model/worker.js`): Node 20 cannot load
 * a `.ts` worker, so `pool.ts` points at the build output even when tests run from source.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from './backend.js';
import { embedClipsLocal, prepareLocalModel } from './embedder.js';
import { backboneFromArtifacts } from './fast.js';
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

async function main(): Promise<void> {
  const started = performance.now();
  let model: ReturnType<typeof prepareLocalModel>;
  let backend: { name: string; reason: string };
  try {
    backend = await selectBackend(init.backend);
    const backbone = await backboneFromArtifacts(init.info, init);
    model = prepareLocalModel(backbone, { maxBatchFrames: init.maxBatchFrames });
  } catch (error) {
    post({ type: 'fatal', error: serialize(error) });
    return;
  }
  const S = init.info.inputSize;
  const frameBytes = S * S * 3;
  // The pool sends one message at a time per worker, so calls never overlap here.
  port!.on('message', (message: ToWorker) => {
    if (message.type !== 'embed') return;
    const t0 = performance.now();
    const { id, frames, data, byteOffset } = message;
    const view = new Uint8Array(data, byteOffset, frames * frameBytes);
    embedClipsLocal(model, view, [frames, 1, S, S, 3]) // [N, 1, D]: N clips of one frame
      .then((out) => post({ type: 'result', id, data: out.buffer as ArrayBuffer, ms: performance.now() - t0 }, [out.buffer as ArrayBuffer]))
      .catch((error: unknown) => post({ type: 'error', id, error: serialize(error) }));
  });
  post({ type: 'ready', backend, loadMs: performance.now() - started });
}

void main();
