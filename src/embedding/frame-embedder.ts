/**
 * The part of the model's `FrameEmbedder` contract that the pipeline uses. Structural, so
 * any embedder with these members (the plain one, a worker pool) fits.
 */
export interface EmbedderLike {
  readonly backboneId: string;
  readonly inputSize: number;
  readonly dim: number;
  readonly backend: { name: string; reason: string };
  /** What saved models record about the backbone (id, name, size, normalisation, spec). */
  readonly backbone?: import('../engines/tfjs/registry.js').BackboneInfo;
  /** clips: uint8 RGB [B, T, S, S, 3]; returns float32 [B, T, D]. `transfer` lets a worker pool take the buffer. */
  embedClips(data: Uint8Array, shape: [number, number, number, number, 3], options?: { signal?: AbortSignal; transfer?: boolean }): Promise<Float32Array>;
  /** Starts loading the model now, if it loads lazily; the engine calls it at the first cache miss. */
  prepare?(): void;
  dispose(): Promise<void>;
}
