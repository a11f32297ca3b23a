/**
 * Small registered layers that keep a saved model self-contained: frame normalisation, the
 * padded-frame mask for raw frames, and the masked mean over time of the `mean` head.
 */
import { tf } from '../tfjs/tf.js';

type Shape = Array<number | null>;
type Kwargs = Record<string, any>;

function first(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

function firstShape(inputShape: Shape | Shape[]): Shape {
  return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
}

/** `y = x * scale[c] + offset[c]` per channel: maps uint8 RGB values to the backbone's range. */
export class Normalize extends tf.layers.Layer {
  static className = 'FramewiseNormalize';
  readonly scale: number[];
  readonly offset: number[];

  constructor(args: { scale: number[]; offset: number[]; name?: string; inputShape?: Shape }) {
    super(args as any);
    this.scale = args.scale;
    this.offset = args.offset;
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() =>
      tf.add(tf.mul(tf.cast(first(inputs), 'float32'), tf.tensor1d(this.scale)), tf.tensor1d(this.offset)),
    );
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale, offset: this.offset };
  }
}
tf.serialization.registerClass(Normalize);

/**
 * Masks the time steps of [B, T, ...] whose values are all `maskValue` (padded frames), giving
 * a [B, T] mask. Keras's `Masking` reduces only the last axis, which for frames would give a
 * [B, T, H, W] mask that a recurrent layer cannot use.
 */
export class TimeMask extends tf.layers.Layer {
  static className = 'FramewiseTimeMask';
  readonly maskValue: number;

  constructor(args: { maskValue?: number; name?: string; inputShape?: Shape } = {}) {
    super(args as any);
    this.maskValue = args.maskValue ?? 0;
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override computeMask(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = first(inputs);
      const axes = x.shape.map((_, i) => i).slice(2);
      return tf.any(tf.notEqual(x, this.maskValue), axes); // [B, T]
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = first(inputs);
      const keep = tf.cast(this.computeMask(x), x.dtype); // [B, T]
      // Zero the padded steps, like Keras's Masking does.
      return tf.mul(x, tf.reshape(keep, [...keep.shape, ...x.shape.slice(2).map(() => 1)]));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), maskValue: this.maskValue };
  }
}
tf.serialization.registerClass(TimeMask);

/** Mean over the real (unmasked) time steps: [B, T, D] + mask [B, T] -> [B, D]. */
export class MaskedMean extends tf.layers.Layer {
  static className = 'FramewiseMaskedMean';

  constructor(args: { name?: string; inputShape?: Shape } = {}) {
    super(args as any);
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = firstShape(inputShape);
    return [shape[0], ...shape.slice(2)];
  }

  override computeMask(): tf.Tensor {
    return null as unknown as tf.Tensor; // the time axis is gone
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = first(inputs); // [B, T, D]
      const mask = kwargs?.mask as tf.Tensor | undefined;
      if (!mask) return tf.mean(x, 1);
      const w = tf.expandDims(tf.cast(mask, 'float32'), -1); // [B, T, 1]
      return tf.div(tf.sum(tf.mul(x, w), 1), tf.maximum(tf.sum(w, 1), 1)); // [B, D]
    });
  }
}
tf.serialization.registerClass(MaskedMean);
