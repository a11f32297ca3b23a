/**
 * Messages between the worker pool (`pool.ts`, main thread) and each worker (`worker.ts`).
 * Both sides import only types from here, so the protocol has one definition.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackboneInfo } from '../../embedding/backbone-spec.js';
import type { BackendRequest } from '../../tfjs/backend.js';
import type { SerializedError } from '../../thread-pool.js';

/**
 * Bumped whenever these messages change. Tests run the pool from TypeScript source but the
 * worker from `dist/`, so a stale build is caught here, with a clear message.
 */
export const PROTOCOL = 3;

/** `workerData` of every worker: what it needs before the backbone arrives. */
export interface WorkerInit {
  protocol: number;
  /** The backend the main thread chose; each worker selects the same for itself. */
  backend: BackendRequest;
  /** Most frames through the backbone at once inside the worker; bounds its activation memory. */
  maxBatchFrames: number;
}

/** main -> worker */
export type ToWorker =
  /** The backbone, once: what it is, and its topology and weights. */
  | { type: 'load'; info: BackboneInfo; artifacts: tf.io.ModelArtifacts; format: 'layers' | 'graph' }
  /** `frames` uint8 RGB frames [frames, S, S, 3] at `byteOffset` of the moved `data`. */
  | { type: 'embed'; id: number; frames: number; data: ArrayBuffer; byteOffset: number };

/** worker -> main */
export type FromWorker =
  | { type: 'ready'; backend: { name: string; reason: string }; loadMs: number }
  | { type: 'result'; id: number; data: ArrayBuffer; ms: number }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'fatal'; error: SerializedError };
