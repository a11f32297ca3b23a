/**
 * Messages between the worker pool (`pool.ts`, main thread) and each worker (`worker.ts`).
 * Both sides import only types from here, so the protocol has one definition.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendRequest } from './backend.js';

/**
 * Per-channel input preparation applied in the worker: `x * scale[c] + offset[c]` on the
 * uint8 RGB values. '0..1' is scale 1/255, offset 0; '-1..1' is scale 2/255, offset -1; a
 * {mean, std} in 0..255 units is scale 1/std, offset -mean/std.
 */
export interface Preprocess {
  scale: [number, number, number];
  offset: [number, number, number];
}

/** `workerData` of every worker. */
export interface WorkerInit {
  backend: BackendRequest;
  /** The backbone, serialised: topology, weight specs and one weight buffer. */
  artifacts: tf.io.ModelArtifacts;
  /** 'layers' for a tf.LayersModel, 'graph' for a tf.GraphModel. */
  format: 'layers' | 'graph';
  /** For a GraphModel: the output node to read (its default output when absent). */
  outputNode?: string;
  inputSize: number;
  dim: number;
  preprocess: Preprocess;
  /** Frames per backbone call inside the worker; bounds the worker's activation memory. */
  maxFrames: number;
}

/** main -> worker */
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
