/**
 * A hand-written training step for the recurrent heads (`lstm`, `gru`, `bilstm`, clip and frame
 * mode), computed with the very weight variables of the head's Keras layers, so the saved
 * model and `predict` stay plain tfjs layers.
 *
 * Why not `optimizer.minimize(() => model.apply(x))`: on wasm only a matmul with neither
 * operand transposed reaches XNNPACK; the transposed ones that autodiff emits for every step's
 * gradients (`x^T dz`, `dz W^T`) run a naive triple loop, 20-50x slower. The tape also takes
 * the input's gradient, which nobody needs. So this step:
 * - projects the inputs of all T steps with one `[T*B, D] x [D, gU]` matmul (bias included),
 *   so that only the recurrent part runs step by step;
 * - back-propagates through time by hand, collecting each step's gate gradients, and then
 *   forms the kernel gradients with one matmul each, `X^T dZ` and `H^T dZ`, on explicitly
 *   transposed operands;
 * - leaves the small Dense + softmax + loss tail to autodiff.
 * The maths is the layers' own: tfjs's gate order and hard-sigmoid recurrent activation, and
 * `rnn()`'s masking (a masked step keeps the previous output and states).
 *
 * An LSTM direction runs through time in `lstm-step.ts`, its gate arithmetic in JavaScript;
 * a GRU direction here, on tfjs ops.
 */
import { tf } from '../tfjs/tf.js';
import type { HeadConfig } from './types.js';
import { HEADS } from './heads/registry.js';
import { LstmDirection, Scratch } from './lstm-step.js';

/** One training batch, as `trainHead` packs it. */
export interface StepBatch {
  /** [B, T, D], padding zeroed. */
  x: tf.Tensor3D;
  /** One-hot [B, C] (clip) or [B, T, C] (frame). */
  y: tf.Tensor;
  /** Per-target weights [B] or [B, T]. */
  w: tf.Tensor;
  /** [B*T] (batch-major): 1 where the frame has a non-zero value, as `Masking` computes it. */
  keep: Float32Array;
}

export interface StepResult {
  loss: tf.Scalar;
  /** Correct predictions, and targets counted (weight > 0), in this batch. */
  hits: tf.Scalar;
  counted: tf.Scalar;
}

/** A loss over the head's softmax output: probs [B, C] or [B, T, C] -> scalar. */
export type LossFn = (probs: tf.Tensor, y: tf.Tensor, w: tf.Tensor) => tf.Scalar;

type Cell = 'lstm' | 'gru';

interface CellVars {
  kernel: tf.Variable<tf.Rank.R2>; // [D, gU]
  recurrent: tf.Variable<tf.Rank.R2>; // [U, gU]
  bias: tf.Variable; // [gU]
}

/** What the forward pass keeps of one direction for the backward pass, per processing step. */
interface Trace {
  reverse: boolean;
  /** The state before each processing step, [B, U]. */
  hPrev: tf.Tensor2D[];
  /** Per-step saved tensors, by name. */
  saved: Record<string, tf.Tensor2D>[];
  /** The output after each processing step, [B, U]. */
  h: tf.Tensor2D[];
}

function hardSigmoid(x: tf.Tensor): tf.Tensor2D {
  // As tfjs-layers writes it, so the values match the layer's to the bit.
  return tf.clipByValue(tf.add(0.5, tf.mul(0.2, x)), 0, 1) as tf.Tensor2D;
}

/** d hardSigmoid / dx: 0.2 where 0 <= 0.2x + 0.5 <= 1 (clipByValue's gradient), else 0. */
function hardSigmoidGrad(x: tf.Tensor): tf.Tensor2D {
  const y = tf.add(0.5, tf.mul(0.2, x));
  return tf.mul(
    tf.cast(tf.logicalAnd(tf.greaterEqual(y, 0), tf.lessEqual(y, 1)), 'float32'),
    0.2,
  ) as tf.Tensor2D;
}

/** `rnn()`'s masking: the new value where the step is real, the previous one where it is padding. */
function masked(
  next: tf.Tensor2D,
  prev: tf.Tensor2D,
  m: tf.Tensor2D | undefined,
  notM: tf.Tensor2D | undefined,
): tf.Tensor2D {
  return m && notM ? (tf.add(tf.mul(next, m), tf.mul(prev, notM)) as tf.Tensor2D) : next;
}

/**
 * Runs one GRU direction over time. `proj` holds the input projections of every step in time
 * order, each [B, 3U]; `masks` the per-step [B, 1] masks (absent when no frame is padded).
 */
function forward(
  proj: tf.Tensor2D[],
  u: tf.Tensor2D,
  masks: tf.Tensor2D[] | undefined,
  reverse: boolean,
): Trace {
  const steps = proj.length;
  const [b, units] = [proj[0].shape[0], u.shape[0]];
  let h = tf.zeros([b, units]) as tf.Tensor2D;
  const trace: Trace = { reverse, hPrev: [], saved: [], h: [] };
  // The update/reset part of the recurrent kernel, and the candidate's part.
  const [u1, u2] = tf.split(u, [2 * units, units], 1) as tf.Tensor2D[];
  for (let k = 0; k < steps; k++) {
    const t = reverse ? steps - 1 - k : k;
    const m = masks?.[t];
    const notM = m ? (tf.sub(1, m) as tf.Tensor2D) : undefined;
    trace.hPrev.push(h);
    const [xz, xr, xh] = tf.split(proj[t], 3, 1) as tf.Tensor2D[];
    const [rz, rr] = tf.split(tf.matMul(h, u1), 2, 1) as tf.Tensor2D[];
    const az = tf.add(xz, rz) as tf.Tensor2D;
    const ar = tf.add(xr, rr) as tf.Tensor2D;
    const z = hardSigmoid(az);
    const r = hardSigmoid(ar);
    const rh = tf.mul(r, h) as tf.Tensor2D;
    const hh = tf.tanh(tf.add(xh, tf.matMul(rh, u2))) as tf.Tensor2D;
    const hNew = tf.add(tf.mul(z, h), tf.mul(tf.add(1, tf.neg(z)), hh)) as tf.Tensor2D;
    trace.saved.push({ az, ar, z, r, rh, hh, ...(m ? { m, notM: notM! } : {}) });
    h = masked(hNew, h, m, notM);
    trace.h.push(h);
  }
  return trace;
}

/**
 * Back-propagates one GRU direction. `dOut[t]` is the loss gradient reaching the output at
 * time t ([B, U], or undefined). Returns the gradients of the input projections (time order,
 * [T*B, 3U] time-major) and of the recurrent kernel.
 */
function backward(
  trace: Trace,
  u: tf.Tensor2D,
  dOut: (tf.Tensor2D | undefined)[],
): { dProj: tf.Tensor2D; dU: tf.Tensor2D } {
  const steps = trace.h.length;
  const units = u.shape[0];
  const b = trace.h[0].shape[0];
  const [u1, u2] = tf.split(u, [2 * units, units], 1) as tf.Tensor2D[];
  // Transposed once here, so every step's matmul takes XNNPACK's path.
  const u1T = tf.transpose(u1) as tf.Tensor2D; // [2U, U]
  const u2T = tf.transpose(u2) as tf.Tensor2D; // [U, U]
  const dProj: tf.Tensor2D[] = new Array(steps); // by time
  const dRec: tf.Tensor2D[] = new Array(steps); // by processing step: at the update/reset recurrent matmul
  const dRec2: tf.Tensor2D[] = new Array(steps); // at the candidate's recurrent matmul
  let dh = tf.zeros([b, units]) as tf.Tensor2D;
  for (let k = steps - 1; k >= 0; k--) {
    const t = trace.reverse ? steps - 1 - k : k;
    const s = trace.saved[k];
    const out = dOut[t];
    const dhTot = out ? (tf.add(dh, out) as tf.Tensor2D) : dh;
    const grads: StepGrads = {
      dhNew: s.m ? (tf.mul(dhTot, s.m) as tf.Tensor2D) : dhTot,
      dhKeep: s.notM ? (tf.mul(dhTot, s.notM) as tf.Tensor2D) : undefined,
    };
    const step = gruStepBack(s, grads, trace.hPrev[k], u1T, u2T);
    dProj[t] = tf.concat([step.dzr, step.dah], 1) as tf.Tensor2D; // [B, 3U]
    dRec[k] = step.dzr;
    dRec2[k] = step.dah;
    dh = step.dhPrev;
  }
  // Kernel gradients as one matmul over all steps: [U, T*B] x [T*B, gU].
  const hPrevT = tf.transpose(tf.concat(trace.hPrev, 0)) as tf.Tensor2D; // [U, T*B]
  const rhT = tf.transpose(
    tf.concat(
      trace.saved.map((s) => s.rh),
      0,
    ),
  ) as tf.Tensor2D; // [U, T*B]
  const dU = tf.concat(
    [
      tf.matMul(hPrevT, tf.concat(dRec, 0) as tf.Tensor2D),
      tf.matMul(rhT, tf.concat(dRec2, 0) as tf.Tensor2D),
    ],
    1,
  ) as tf.Tensor2D;
  return { dProj: tf.concat(dProj, 0) as tf.Tensor2D, dU };
}

/** The gradient reaching one step's output, split by the mask: onto the new state, and onto the state a padded step keeps. */
interface StepGrads {
  dhNew: tf.Tensor2D;
  dhKeep: tf.Tensor2D | undefined;
}

/**
 * One GRU step backwards: the gradients of the update/reset pre-activations `dzr` [B, 2U] and
 * of the candidate's `dah` [B, U], and the gradient reaching the previous output `hPrev`.
 */
function gruStepBack(
  s: Record<string, tf.Tensor2D>,
  { dhNew, dhKeep }: StepGrads,
  hPrev: tf.Tensor2D,
  u1T: tf.Tensor2D,
  u2T: tf.Tensor2D,
): { dzr: tf.Tensor2D; dah: tf.Tensor2D; dhPrev: tf.Tensor2D } {
  const dz = tf.mul(dhNew, tf.sub(hPrev, s.hh)); // update gate output
  const dah = tf.mul(tf.mul(dhNew, tf.add(1, tf.neg(s.z))), tf.sub(1, tf.square(s.hh))) as tf.Tensor2D; // candidate pre-activation
  const drh = tf.matMul(dah, u2T); // [B, U]
  const daz = tf.mul(dz, hardSigmoidGrad(s.az));
  const dar = tf.mul(tf.mul(drh, hPrev), hardSigmoidGrad(s.ar));
  const dzr = tf.concat([daz, dar], 1) as tf.Tensor2D; // [B, 2U]
  let dhPrev = tf.add(tf.add(tf.mul(dhNew, s.z), tf.mul(drh, s.r)), tf.matMul(dzr, u1T));
  if (dhKeep) dhPrev = tf.add(dhPrev, dhKeep);
  return { dzr, dah, dhPrev: dhPrev as tf.Tensor2D };
}

/** The recurrent directions of a head, with the variables of each, as its registry entry names them. */
function recurrentParts(
  model: tf.LayersModel,
  config: HeadConfig,
): { cell: Cell; dirs: CellVars[] } | undefined {
  const parts = HEADS.get(config.type).fastStep?.(model);
  if (!parts) return undefined;
  const vars = (layer: tf.layers.Layer): CellVars => {
    const [kernel, recurrent, bias] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    return {
      kernel: kernel as tf.Variable<tf.Rank.R2>,
      recurrent: recurrent as tf.Variable<tf.Rank.R2>,
      bias,
    };
  };
  return { cell: parts.cell, dirs: parts.directions.map(vars) };
}

/** The time-major masks [T*B] from the batch-major `keep` [B*T]; undefined when no frame is padded. */
function timeMajorKeep(keep: Float32Array, b: number, t: number): Float32Array | undefined {
  if (!keep.some((v) => v === 0)) return undefined;
  const keepTime = new Float32Array(t * b);
  for (let i = 0; i < b; i++) for (let s = 0; s < t; s++) keepTime[s * b + i] = keep[i * t + s];
  return keepTime;
}

/** One recurrent direction, run forwards at construction. */
interface Direction {
  /** The head's recurrent output: the last state [B, U] (clip), or every output [B, T, U] in time order (frame). */
  output(frame: boolean): tf.Tensor;
  /** Back-propagates the gradient at `output(frame)`: the input projections' (time-major [T*B, gU]) and the recurrent kernel's. */
  backward(dOut: tf.Tensor, frame: boolean): { dProj: tf.Tensor2D; dU: tf.Tensor2D };
}

/** A GRU direction on tfjs ops. */
class GruDirection implements Direction {
  private readonly trace: Trace;

  constructor(
    proj: tf.Tensor2D,
    private readonly u: tf.Tensor2D,
    keepTime: Float32Array | undefined,
    t: number,
    reverse: boolean,
  ) {
    const masks = keepTime
      ? (tf.split(tf.tensor2d(keepTime, [keepTime.length, 1]), t, 0) as tf.Tensor2D[]) // T x [B, 1]
      : undefined;
    this.trace = forward(tf.split(proj, t, 0) as tf.Tensor2D[], u, masks, reverse);
  }

  output(frame: boolean): tf.Tensor {
    const { h, reverse } = this.trace;
    if (!frame) return h[h.length - 1]; // [B, U]
    return tf.stack(reverse ? [...h].reverse() : h, 1); // [B, T, U]
  }

  backward(dOut: tf.Tensor, frame: boolean): { dProj: tf.Tensor2D; dU: tf.Tensor2D } {
    const t = this.trace.h.length;
    // The gradient reaching the output at each time: every step in frame mode, the last processing step in clip mode.
    const perTime = frame
      ? (tf.unstack(tf.transpose(dOut, [1, 0, 2])) as tf.Tensor2D[]) // T x [B, U]
      : Array.from({ length: t }, (_, s) =>
          s === (this.trace.reverse ? 0 : t - 1) ? (dOut as tf.Tensor2D) : undefined,
        );
    return backward(this.trace, this.u, perTime);
  }
}

export interface FastStep {
  /** One step: gradients of `loss` applied by `optimizer` to `variables`. */
  run(batch: StepBatch, optimizer: tf.Optimizer, variables: tf.Variable[]): StepResult;
  /** The loss and its gradients for `variables`, without applying them (the caller disposes). */
  gradients(batch: StepBatch, variables: tf.Variable[]): { loss: tf.Scalar; grads: tf.Tensor[] };
}

/**
 * The fast step for `model`, or undefined for a head whose registry entry says `fastStep: null`
 * (`mean`, which has no recurrence and trains quickly through autodiff).
 */
export function fastStep(model: tf.LayersModel, config: HeadConfig, loss: LossFn): FastStep | undefined {
  const parts = recurrentParts(model, config);
  if (!parts) return undefined;
  // The Dense layer (inside TimeDistributed in frame mode) is the last, with kernel and bias.
  const [kernel, bias] = model.trainableWeights.slice(-2).map((w) => w.read() as tf.Variable);
  return new RecurrentStep(parts.cell, parts.dirs, { kernel, bias }, config.mode === 'frame', loss);
}

/**
 * What one step computes, inside a tidy: the loss, the gradients of the variables asked for
 * (in their order), the accuracy counts. A type, not an interface, so that tidy may return it.
 */
type StepOutcome = { loss: tf.Scalar; hits: tf.Scalar; counted: tf.Scalar; grads: tf.Tensor[] };

/** The fast step of a recurrent head: its directions' cell variables, then a Dense + softmax tail. */
class RecurrentStep implements FastStep {
  /** Per direction, the LSTM's arrays, kept from batch to batch. */
  private readonly scratch: Scratch[];

  constructor(
    private readonly cell: Cell,
    private readonly dirs: CellVars[],
    private readonly dense: { kernel: tf.Variable; bias: tf.Variable },
    /** Frame mode: every step's output feeds the tail, not only the last. */
    private readonly frame: boolean,
    private readonly lossFn: LossFn,
  ) {
    this.scratch = dirs.map(() => new Scratch());
  }

  gradients(batch: StepBatch, variables: tf.Variable[]): { loss: tf.Scalar; grads: tf.Tensor[] } {
    return tf.tidy(() => {
      const r = this.step(batch, variables);
      return { loss: r.loss, grads: r.grads };
    });
  }

  run(batch: StepBatch, optimizer: tf.Optimizer, variables: tf.Variable[]): StepResult {
    const { grads, loss: value, hits, counted } = tf.tidy(() => this.step(batch, variables));
    try {
      // Same variables, in the same order as `optimizer.minimize` would pass them.
      optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: grads[i] })));
    } finally {
      tf.dispose(grads);
    }
    return { loss: value, hits, counted };
  }

  /** Forward through every direction, the tail by autodiff, then back through time by hand. */
  private step(batch: StepBatch, variables: tf.Variable[]): StepOutcome {
    const [b, t, d] = batch.x.shape;
    const xTime = tf.reshape(tf.transpose(batch.x, [1, 0, 2]), [t * b, d]) as tf.Tensor2D; // [T*B, D], time-major
    const xTimeT = tf.transpose(xTime) as tf.Tensor2D; // [D, T*B]
    const keepTime = timeMajorKeep(batch.keep, b, t);
    const directions = this.dirs.map((v, k): Direction => {
      const proj = tf.add(tf.matMul(xTime, v.kernel), v.bias) as tf.Tensor2D; // [T*B, gU]
      const reverse = k === 1; // the backward direction
      return this.cell === 'lstm'
        ? new LstmDirection(
            proj.dataSync() as Float32Array,
            v.recurrent,
            keepTime,
            b,
            reverse,
            this.scratch[k],
          )
        : new GruDirection(proj, v.recurrent, keepTime, t, reverse);
    });
    const outputs = directions.map((dir) => dir.output(this.frame));
    const { loss, probs, dOuts, dKernel, dBias } = this.tail(outputs, batch);
    const grad = new Map<tf.Variable, tf.Tensor>([
      [this.dense.kernel, dKernel],
      [this.dense.bias, dBias],
    ]);
    directions.forEach((dir, k) => {
      const v = this.dirs[k];
      const { dProj, dU } = dir.backward(dOuts[k], this.frame);
      grad.set(v.kernel, tf.matMul(xTimeT, dProj)); // [D, T*B] x [T*B, gU]
      grad.set(v.recurrent, dU);
      grad.set(v.bias, tf.sum(dProj, 0));
    });
    const { hits, counted } = accuracy(probs, batch);
    probs.dispose();
    // An array, not the map: tidy keeps only the tensors it can see in what is returned.
    return { grads: variables.map((v) => grad.get(v)!), loss, hits, counted };
  }

  /**
   * The Dense + softmax + loss tail, by autodiff over the recurrent output: the loss, the
   * probabilities, the gradient reaching each direction's output, and the Dense gradients.
   */
  private tail(
    outputs: tf.Tensor[],
    batch: StepBatch,
  ): { loss: tf.Scalar; probs: tf.Tensor; dOuts: tf.Tensor[]; dKernel: tf.Tensor; dBias: tf.Tensor } {
    const { frame } = this;
    const [b, t] = batch.x.shape;
    const rnnOut = outputs.length === 1 ? outputs[0] : tf.concat(outputs, -1);
    let probs: tf.Tensor | undefined;
    const tail = tf.valueAndGrads((out: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) => {
      const flat = frame ? tf.reshape(out, [b * t, out.shape[2]!]) : out; // [B(*T), U']
      const p = tf.softmax(tf.add(tf.matMul(flat, kernel), bias)); // [B(*T), C]
      probs = tf.keep(frame ? tf.reshape(p, [b, t, -1]) : p); // [B, T, C] in frame mode
      return this.lossFn(probs, batch.y, batch.w);
    });
    const { value, grads } = tail([rnnOut, this.dense.kernel, this.dense.bias]);
    const [dOut, dKernel, dBias] = grads;
    const units = this.dirs[0].recurrent.shape[0];
    const dOuts = this.dirs.length === 1 ? [dOut] : tf.split(dOut, [units, units], -1); // per direction
    return { loss: value as tf.Scalar, probs: probs!, dOuts, dKernel, dBias };
  }
}

/** Correct predictions, and targets counted (weight > 0). */
function accuracy(probs: tf.Tensor, batch: StepBatch): { hits: tf.Scalar; counted: tf.Scalar } {
  const valid = tf.cast(tf.greater(batch.w, 0), 'float32');
  const hit = tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(batch.y, -1)), 'float32');
  return { hits: tf.sum(tf.mul(hit, valid)) as tf.Scalar, counted: tf.sum(valid) as tf.Scalar };
}
