/**
 * The ONNX worker (see pool.ts): loads ONNX Runtime, opens the session from `workerData`
 * once, and runs frames through it, one task at a time, on the thread pool's task loop
 * (thread-pool.ts `serveTasks`). Frames come in a moved ArrayBuffer and the embeddings go
 * back in one. On close it lets the running task end, then releases the session.
 *
 * This file runs as compiled JavaScript only (`dist/engines/onnx/worker.js`): Node 20 cannot
 * load a `.ts` worker, so pool.ts points at the build output even when tests run from source.
 */
import { workerData } from 'node:worker_threads';
import { serveTasks } from '../../thread-pool.js';
import { ONNX_WORKER_PROTOCOL, type OnnxResult, type OnnxTask, type OnnxWorkerData } from './pool.js';
import { loadOrt } from './runtime.js';
import { openSession, runSession } from './session.js';

const init = workerData as OnnxWorkerData;
const opened =
  init.protocol === ONNX_WORKER_PROTOCOL
    ? loadOrt().then((ort) => openSession(ort, init.source, init.threads))
    : Promise.reject(
        new Error(
          `dist/engines/onnx/worker.js speaks protocol ${ONNX_WORKER_PROTOCOL}, the pool ${init.protocol}: the build is stale; run \`npm run build\``,
        ),
      );
opened.catch(() => undefined); // each task rejects with it

serveTasks<OnnxTask, OnnxResult>(
  async (task, signal) => {
    const open = await opened;
    if (task.type === 'describe') return { result: { type: 'described', info: open.info, what: open.what } };
    const data = new Uint8Array(task.data, task.byteOffset, task.byteLength);
    const out = await runSession(open, data, task.frames, init.threads.runFrames, signal);
    const buffer = out.buffer as ArrayBuffer;
    return { result: { type: 'embedded', data: buffer }, transfer: [buffer] };
  },
  async () => {
    const open = await opened.catch(() => undefined);
    await open?.session.release();
  },
);
