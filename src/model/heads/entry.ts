/**
 * What a temporal head is, for the registry in `registry.ts`. An entry imports tfjs as a type
 * only and is handed tfjs when it builds, so the registry loads without tfjs: the CLI reads
 * it for `--help` and the task options check `head` against it.
 */
import type { tf } from '../../tfjs/tf.js';

export interface HeadContext {
  tf: typeof tf;
  /** Frame mode: the head gives every frame's vector [B, T, U]; clip mode one per clip [B, U]. */
  sequences: boolean;
  /** Recurrent units (per direction). */
  units: number;
  /** A recurrent layer over the frames with framewise's initialisers (seeded), returning sequences in frame mode. */
  recurrent(cell: 'lstm' | 'gru', name: string): tf.layers.Layer;
  /** framewise's registered layers (they serialise with the model). */
  layers: typeof import('../layers.js');
}

export interface HeadEntry {
  /** What it is, for `--help` and the docs. */
  readonly help: string;
  /**
   * The layers between the masked frame embeddings [B, T, D] and the Dense classifier:
   * [B, U] in clip mode, [B, T, U] in frame mode.
   */
  build(x: tf.SymbolicTensor, ctx: HeadContext): tf.SymbolicTensor;
  /**
   * The recurrent layers that the hand-written training step (`fast-step.ts`) runs, one per
   * direction, or `null` for a head that trains through autodiff (no recurrence). Required, so
   * that a new recurrent head cannot fall back to the slow path unseen.
   */
  readonly fastStep:
    | ((model: tf.LayersModel) => { cell: 'lstm' | 'gru'; directions: tf.layers.Layer[] })
    | null;
}
