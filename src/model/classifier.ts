/**
 * A trained head and what it was trained for: `predict` maps frame embeddings [B, T, D] (and
 * which frames are real) to class probabilities. Made by `trainHead` and `loadModel`.
 */
import { tf } from '../tfjs/tf.js';
import { ModelError, ShapeError } from '../errors.js';
import { checkSignal, invalid } from '../validate.js';
import { embeddingsTensor } from './heads.js';
import type { HeadClassifier, HeadMode, ModelInfo } from './types.js';

/**
 * The `HeadClassifier` that `trainHead` and `loadModel` make. Its tfjs types stay inside the
 * model folder's code; the public declarations name only the interface (types.ts).
 */
export class TfHeadClassifier implements HeadClassifier {
  /** The head (an ensemble's first member). */
  readonly model: tf.LayersModel;
  /** Every head: one, or an ensemble's members in seed order, whose probabilities `predict` averages. */
  readonly members: readonly tf.LayersModel[];
  info: ModelInfo;
  private disposed = false;

  constructor(model: tf.LayersModel | readonly tf.LayersModel[], info: ModelInfo) {
    this.members = Array.isArray(model) ? [...model] : [model as tf.LayersModel];
    if (this.members.length === 0) throw new ModelError('a classifier needs at least one head');
    this.model = this.members[0];
    this.info = info;
  }

  get labels(): string[] {
    return this.info.labels;
  }

  get mode(): HeadMode {
    return this.info.mode;
  }

  /**
   * Class probabilities: [B, C] in clip mode, [B, T, C] in frame mode, row-major. `mask`
   * ([B*T], true/1 for a real frame) marks padded frames, which the head skips.
   */
  async predict(
    embeddings: Float32Array,
    shape: [number, number, number],
    mask?: ArrayLike<boolean | number>,
    options: { signal?: AbortSignal } = {},
  ): Promise<Float32Array> {
    checkSignal('options.signal', options.signal);
    if (this.disposed) throw new ModelError('this classifier has been disposed');
    checkEmbeddings('predict', embeddings, shape, this.info.dim, mask);
    const y = tf.tidy(() => averagedPredict(this.members, embeddingsTensor(embeddings, shape, mask)));
    try {
      return (await y.data()) as Float32Array;
    } finally {
      y.dispose();
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.members) m.dispose();
  }
}

/** The class probabilities of one model, or the mean of an ensemble's (the one place an ensemble is averaged). */
export function averagedPredict(models: tf.LayersModel | readonly tf.LayersModel[], x: tf.Tensor): tf.Tensor {
  const list = Array.isArray(models) ? models : [models as tf.LayersModel];
  return tf.tidy(() => {
    const each = list.map((m) => m.predict(x) as tf.Tensor); // [B, C] or [B, T, C] each
    return each.length === 1 ? each[0] : tf.div(tf.addN(each), each.length);
  });
}

/** Validates embeddings against their shape and the expected embedding size. */
export function checkEmbeddings(
  stage: string,
  embeddings: unknown,
  shape: unknown,
  dim: number | undefined,
  mask?: ArrayLike<boolean | number>,
): void {
  if (!(embeddings instanceof Float32Array)) throw invalid('embeddings', 'a Float32Array', embeddings);
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw invalid('shape', 'an array [B, T, D] of non-negative integers', shape);
  }
  const [b, t, d] = shape as number[];
  if (dim !== undefined && d !== dim) {
    throw new ShapeError(
      `${stage}: mismatched embedding dimensions (the head takes D = ${dim})`,
      [null, null, dim],
      shape as number[],
    );
  }
  if (embeddings.length !== b * t * d)
    throw new ShapeError(`${stage}: embeddings length`, [b * t * d], [embeddings.length]);
  if (mask !== undefined && mask.length !== b * t)
    throw new ShapeError(`${stage}: mask length ([B*T])`, [b * t], [mask.length]);
}

/** The `TfHeadClassifier` behind a `HeadClassifier`: every one is made by `trainHead` or `loadModel`. */
export function tfClassifier(head: HeadClassifier, field = 'classifier'): TfHeadClassifier {
  if (!(head instanceof TfHeadClassifier))
    throw invalid(field, 'a HeadClassifier (from trainHead or loadModel)', head);
  return head;
}
