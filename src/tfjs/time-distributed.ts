/**
 * Our own `TimeDistributed`: one call of the inner layer or model over every frame at once.
 * `tf.layers.timeDistributed` gives the same numbers but loops over time (one inner call per
 * step). Measured on wasm (`npm run bench:model`) that costs little, 1.02-1.16x, so the
 * reasons for this layer are that it is registered, so a saved
 * model that contains it reloads, and it passes the [B, T] mask on to a following recurrent
 * layer.
 */
import { tf } from './tf.js';

type Layer = tf.layers.Layer;
type Shape = Array<number | null>;
type Kwargs = Record<string, any>;
type LayerVariable = Layer['weights'][number];

/** Rebuilds a layer (or a nested model) from its `{className, config}` through tfjs's registry. */
export function deserializeLayer(spec: { className: string; config: tf.serialization.ConfigDict }): Layer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[spec.className];
  if (!entry) throw new Error(`Unknown layer class '${spec.className}': is it registered?`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, spec.config) as unknown as Layer;
}

export interface TimeDistributedArgs {
  /** The layer or LayersModel applied to every time step; its weights are shared across steps. */
  layer: Layer;
  name?: string;
  trainable?: boolean;
  inputShape?: Shape;
  batchInputShape?: Shape;
}

export class TimeDistributed extends tf.layers.Layer {
  static className = 'FramewiseTimeDistributed';
  readonly layer: Layer;

  constructor(args: TimeDistributedArgs) {
    super(args as any);
    this.layer = args.layer;
    this.supportsMasking = true;
  }

  /** [B, T, ...] -> the inner layer's input shape [B, ...]. */
  private static innerShape(inputShape: Shape): Shape {
    if (inputShape.length < 3) {
      throw new Error(
        `TimeDistributed needs an input of rank >= 3 ([batch, time, ...]); got [${inputShape.join(', ')}]`,
      );
    }
    return [inputShape[0], ...inputShape.slice(2)];
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const inner = TimeDistributed.innerShape(shape);
    if (!this.layer.built) {
      this.layer.build(inner as any);
      this.layer.built = true;
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const innerOut = this.layer.computeOutputShape(TimeDistributed.innerShape(shape) as any) as Shape;
    // [B, ...out] -> [B, T, ...out]
    return [shape[0], shape[1], ...innerOut.slice(1)];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [batch, time] = x.shape as number[];
      // The [B, T] mask belongs to the time axis, not to the inner layer: do not pass it down.
      const { mask: _mask, ...innerKwargs } = kwargs ?? {};
      const flat = tf.reshape(x, [batch * time, ...x.shape.slice(2)]); // [B*T, ...]
      const y = this.layer.apply(flat, innerKwargs) as tf.Tensor; // [B*T, ...out]
      return tf.reshape(y, [batch, time, ...y.shape.slice(1)]); // [B, T, ...out]
    });
  }

  /** The time mask is unchanged by a per-step layer, so it flows on to the recurrent layer. */
  override computeMask(
    _inputs: tf.Tensor | tf.Tensor[],
    mask?: tf.Tensor | tf.Tensor[],
  ): tf.Tensor | tf.Tensor[] {
    return (mask ?? null) as tf.Tensor;
  }

  override get trainable(): boolean {
    return this.layer?.trainable ?? true;
  }

  override set trainable(value: boolean) {
    if (this.layer) this.layer.trainable = value;
  }

  override get trainableWeights(): LayerVariable[] {
    return this.layer.trainableWeights;
  }

  override set trainableWeights(_weights: LayerVariable[]) {
    // The weights live in the inner layer; tfjs's base constructor assigns [] here.
  }

  override get nonTrainableWeights(): LayerVariable[] {
    return this.layer.nonTrainableWeights;
  }

  override set nonTrainableWeights(_weights: LayerVariable[]) {
    // As above.
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      layer: { className: this.layer.getClassName(), config: this.layer.getConfig() },
    };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const layer = deserializeLayer(config.layer as any);
    const { layer: _spec, ...rest } = config;
    return new cls({ ...rest, layer } as any);
  }
}
tf.serialization.registerClass(TimeDistributed);
