/**
 * `FrameEmbedder`: the one contract between the runners and an engine. uint8 RGB clips
 * [B, T, S, S, 3] in, float32 frame embeddings [B, T, D] out. Every engine implements it,
 * and nothing above `src/engines` knows which engine runs.
 */
import { ShapeError } from '../errors.js';
import { invalid } from '../validate.js';
import type { BackboneInfo } from './backbone-spec.js';

export interface FrameEmbedder {
  /** Stable id: name + hash of topology and weights. */
  readonly backboneId: string;
  /** Frames must be inputSize x inputSize RGB. */
  readonly inputSize: number;
  /** Embedding size D. */
  readonly dim: number;
  /** The engine that runs the backbone (`onnx` or `tfjs`), and why it was chosen (recorded in outputs). */
  readonly engine: { name: string; reason: string };
  /** The tfjs backend that runs the backbone, and why: present only when the engine is `tfjs`. */
  readonly backend?: { name: string; reason: string };
  /** What saved models record about the backbone (id, name, size, normalisation, spec). */
  readonly backbone: BackboneInfo;
  /** clips: uint8 RGB [B, T, S, S, 3]; returns float32 [B, T, D]. `transfer` lets a worker pool take the buffer. */
  embedClips(
    data: Uint8Array,
    shape: [number, number, number, number, 3],
    options?: { signal?: AbortSignal; transfer?: boolean },
  ): Promise<Float32Array>;
  /** Starts loading the model now, if it loads lazily; the runner calls it at the first cache miss. */
  prepare?(): void;
  dispose(): Promise<void>;
}

/** Checks a packed clip buffer against its shape [B, T, S, S, 3] and the backbone's input size S. */
export function checkClipShape(data: Uint8Array, shape: readonly number[], inputSize: number): void {
  if (!(data instanceof Uint8Array)) throw invalid('data', 'a Uint8Array', data);
  const expected = [null, null, inputSize, inputSize, 3];
  if (
    !Array.isArray(shape) ||
    shape.length !== 5 ||
    shape.some((d) => !Number.isInteger(d) || d < 1) ||
    shape[2] !== inputSize ||
    shape[3] !== inputSize ||
    shape[4] !== 3
  ) {
    throw new ShapeError('embedClips', expected, Array.isArray(shape) ? shape : []);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) throw new ShapeError('embedClips (data length)', [size], [data.length]);
}
