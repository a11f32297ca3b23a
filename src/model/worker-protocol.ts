/**
 * Messages between the worker pool (`pool.ts`, main thread) and each worker (`worker.ts`).
 * Both sides import only types from here, so the protocol has one definition.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackboneInfo } from './backbones.js';
import type { BackendRequest } from './backend.js';

/** `workerData` of every worker. */
export interface WorkerInit {
  /** The backend the main thread chose; each worker selects the same for itself. */
  backend: BackendRequest;
  /** What the backbone is (id, input size, dim, normalisation, spec). */
  info: BackboneInfo;
  /** The backbone, serialised: topology, weight specs and one weight buffer. */
  artifacts: tf.io.ModelArtifacts;
  format: 'layers' | 'graph';
  /** Most frames through the backbone at once inside the worker; bounds its activation memory. */
  maxBatchFrames: number;
}

/** main -> worker: `frames` uint8 RGB frames [frames, S, S, 3] at `byteOffset` of the moved `data`. */
export type ToWorker = { type: 'embed'; id: number; frames: number; data: ArrayBuffer; byteOffset: number };

/** worker -> main */
export type FromWorker =
  | { type: 'ready'; backend: { name: string; reason: string }; loadMs: number }
  | { type: 'result'; id: number; data: ArrayBuffer; ms: number }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'fatal'; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}
