/**
 * One LSTM direction of the fast training step (`fast-step.ts`), forwards and backwards
 * through time, with the gate arithmetic in JavaScript on Float32Arrays and only the
 * recurrent matmuls on the backend.
 *
 * Why: a step's tensors are [B, U] (16 x 256 at the defaults), too small for a backend op to
 * pay for its call, its allocation and its disposal; the tfjs-op version spent about 40 such
 * ops per time step. Here a time step is one matmul each way. Every product, sum and
 * difference is rounded to float32 (`Math.fround`) where the tfjs op rounded, so the numbers are
 * those of the ops (tanh may differ in the last bit). The maths is the layer's: tfjs's gate
 * order (i, f, c, o), its hard-sigmoid recurrent activation, and `rnn()`'s masking (a masked
 * step keeps the previous output and state).
 */
import { tf } from '../tfjs/tf.js';

const f = Math.fround;
const POINT2 = f(0.2);

/** tfjs's hardSigmoid, as its ops round: clip(0.5 + 0.2 x, 0, 1). */
function hardSigmoid(x: number): number {
  const y = f(0.5 + f(POINT2 * x));
  return Math.min(Math.max(y, 0), 1);
}

/** Its gradient as `clipByValue`'s: 0.2 where 0 <= 0.2 x + 0.5 <= 1, else 0. */
function hardSigmoidGrad(x: number): number {
  const y = f(0.5 + f(POINT2 * x));
  return y >= 0 && y <= 1 ? POINT2 : 0;
}

/** `a` [rows, k] times the backend tensor `w` [k, n], on the backend: [rows, n]. */
function matMul(a: Float32Array, rows: number, w: tf.Tensor2D): Float32Array {
  const at = tf.tensor2d(a, [rows, a.length / rows]);
  const out = tf.matMul(at, w);
  const values = out.dataSync() as Float32Array;
  tf.dispose([at, out]);
  return values;
}

/**
 * Float32Arrays kept from one batch to the next, by name and length: a batch's arrays come to
 * tens of MB, and fresh ones each batch kept the garbage collector busy. Every array taken is
 * written in full before it is read.
 */
export class Scratch {
  private readonly arrays = new Map<string, Float32Array>();

  take(name: string, length: number): Float32Array {
    const key = `${name}/${length}`;
    const kept = this.arrays.get(key);
    if (kept) return kept;
    const a = new Float32Array(length);
    this.arrays.set(key, a);
    return a;
  }
}

export class LstmDirection {
  private readonly units: number;
  private readonly steps: number;
  /** Saved by processing step, each [steps * B * U]: gates, tanh(c), and the states before the step. */
  private readonly gi: Float32Array;
  private readonly gf: Float32Array;
  private readonly gg: Float32Array;
  private readonly go: Float32Array;
  private readonly tc: Float32Array;
  private readonly cPrev: Float32Array;
  private readonly hPrev: Float32Array;
  /** The pre-activations, by processing step, [steps * B * 4U]. */
  private readonly z: Float32Array;
  /** The output at each time, time-major [T * B * U]. */
  private readonly hOut: Float32Array;

  /**
   * Runs the direction forwards. `proj`: the input projections of every step, bias included,
   * time-major [T * B, 4U]; `keep`: time-major [T * B] masks, or undefined when no frame is
   * padded; `u`: the recurrent kernel [U, 4U]; `scratch`: this direction's own, as the arrays
   * of the last batch are overwritten.
   */
  constructor(
    proj: Float32Array,
    private readonly u: tf.Tensor2D,
    private readonly keep: Float32Array | undefined,
    private readonly b: number,
    private readonly reverse: boolean,
    private readonly scratch: Scratch,
  ) {
    this.units = u.shape[0];
    this.steps = proj.length / (b * 4 * this.units);
    const size = this.steps * b * this.units;
    [this.gi, this.gf, this.gg, this.go, this.tc, this.cPrev, this.hPrev, this.hOut] = [
      'gi',
      'gf',
      'gg',
      'go',
      'tc',
      'cPrev',
      'hPrev',
      'hOut',
    ].map((name) => scratch.take(name, size));
    this.z = scratch.take('z', size * 4);
    this.forward(proj);
  }

  private forward(proj: Float32Array): void {
    const { b, units: U, steps, keep } = this;
    const bu = b * U;
    const h = new Float32Array(bu);
    const c = new Float32Array(bu);
    for (let k = 0; k < steps; k++) {
      const t = this.reverse ? steps - 1 - k : k;
      this.hPrev.set(h, k * bu);
      this.cPrev.set(c, k * bu);
      const r = matMul(h, b, this.u); // [B, 4U]
      for (let i = 0; i < b; i++) {
        const real = keep?.[t * b + i] !== 0;
        const zRow = (t * b + i) * 4 * U;
        const zSaved = (k * b + i) * 4 * U;
        for (let j = 0; j < U; j++) {
          const s = k * bu + i * U + j;
          const zi = f(proj[zRow + j] + r[i * 4 * U + j]);
          const zf = f(proj[zRow + U + j] + r[i * 4 * U + U + j]);
          const zg = f(proj[zRow + 2 * U + j] + r[i * 4 * U + 2 * U + j]);
          const zo = f(proj[zRow + 3 * U + j] + r[i * 4 * U + 3 * U + j]);
          this.z[zSaved + j] = zi;
          this.z[zSaved + U + j] = zf;
          this.z[zSaved + 3 * U + j] = zo;
          const gi = hardSigmoid(zi);
          const gf = hardSigmoid(zf);
          const gg = f(Math.tanh(zg));
          const go = hardSigmoid(zo);
          const cNew = f(f(gf * c[i * U + j]) + f(gi * gg));
          const tc = f(Math.tanh(cNew));
          [this.gi[s], this.gf[s], this.gg[s], this.go[s], this.tc[s]] = [gi, gf, gg, go, tc];
          if (real) {
            c[i * U + j] = cNew;
            h[i * U + j] = f(go * tc);
          }
        }
      }
      this.hOut.set(h, t * bu);
    }
  }

  /** The head's recurrent output: the last state [B, U] (clip), or every output [B, T, U] in time order (frame). */
  output(frame: boolean): tf.Tensor {
    const { b, units: U, steps } = this;
    const bu = b * U;
    if (!frame) {
      const last = this.reverse ? 0 : steps - 1;
      return tf.tensor2d(this.hOut.subarray(last * bu, (last + 1) * bu), [b, U]);
    }
    const out = new Float32Array(steps * bu);
    for (let t = 0; t < steps; t++)
      for (let i = 0; i < b; i++)
        out.set(this.hOut.subarray(t * bu + i * U, t * bu + (i + 1) * U), (i * steps + t) * U);
    return tf.tensor3d(out, [b, steps, U]);
  }

  /**
   * Back-propagates `dOut`, the gradient of the loss at `output(frame)`: the gradients of the
   * input projections (time-major [T * B, 4U]) and of the recurrent kernel [U, 4U].
   */
  backward(dOut: tf.Tensor, frame: boolean): { dProj: tf.Tensor2D; dU: tf.Tensor2D } {
    const { b, units: U, steps } = this;
    const bu = b * U;
    const out = dOut.dataSync() as Float32Array;
    const uT = tf.transpose(this.u) as tf.Tensor2D; // [4U, U]: the plain matmul, XNNPACK's path
    const dProj = this.scratch.take('dProj', steps * bu * 4); // by time
    const dRec = this.scratch.take('dRec', steps * bu * 4); // by processing step
    const dh = new Float32Array(bu);
    const dc = new Float32Array(bu);
    const dhKeep = new Float32Array(bu);
    for (let k = steps - 1; k >= 0; k--) {
      const t = this.reverse ? steps - 1 - k : k;
      // The output's gradient at this step: every step in frame mode, the last processed in clip mode.
      const outAt = frame
        ? (i: number) => (i * steps + t) * U
        : k === steps - 1
          ? (i: number) => i * U
          : null;
      this.stepBack(k, t, out, outAt, dh, dc, dhKeep, dRec);
      dProj.set(dRec.subarray(k * bu * 4, (k + 1) * bu * 4), t * bu * 4);
      const dhPrev = matMul(dRec.subarray(k * bu * 4, (k + 1) * bu * 4), b, uT);
      for (let s = 0; s < bu; s++) dh[s] = this.keep ? f(dhPrev[s] + dhKeep[s]) : dhPrev[s];
    }
    const hPrevT = tf.transpose(tf.tensor2d(this.hPrev, [steps * b, U])) as tf.Tensor2D; // [U, T*B]
    const dU = tf.matMul(hPrevT, tf.tensor2d(dRec, [steps * b, 4 * U])) as tf.Tensor2D;
    tf.dispose([uT, hPrevT]);
    return { dProj: tf.tensor2d(dProj, [steps * b, 4 * U]), dU };
  }

  /**
   * One step back: from `dh`, `dc` (the step after's) and the output's gradient, the gate
   * pre-activations' gradient into `dRec` at step k; `dc` becomes the previous cell state's
   * gradient, and `dhKeep` what a padded step passes on to the previous output unchanged.
   */
  private stepBack(
    k: number,
    t: number,
    out: Float32Array,
    outAt: ((i: number) => number) | null,
    dh: Float32Array,
    dc: Float32Array,
    dhKeep: Float32Array,
    dRec: Float32Array,
  ): void {
    const { b, units: U, keep } = this;
    const bu = b * U;
    for (let i = 0; i < b; i++) {
      const m = keep ? keep[t * b + i] : 1;
      const o = outAt ? outAt(i) : -1;
      const zRow = (k * b + i) * 4 * U;
      for (let j = 0; j < U; j++) {
        const e = i * U + j;
        const s = k * bu + e;
        const dhTot = o >= 0 ? f(dh[e] + out[o + j]) : dh[e];
        const dhNew = keep ? f(dhTot * m) : dhTot;
        if (keep) dhKeep[e] = f(dhTot * (1 - m));
        const dcIn = keep ? f(dc[e] * m) : dc[e];
        const tc = this.tc[s];
        const dcNew = f(dcIn + f(f(dhNew * this.go[s]) * f(1 - f(tc * tc))));
        const gg = this.gg[s];
        dRec[zRow + j] = f(f(dcNew * gg) * hardSigmoidGrad(this.z[zRow + j]));
        dRec[zRow + U + j] = f(f(dcNew * this.cPrev[s]) * hardSigmoidGrad(this.z[zRow + U + j]));
        dRec[zRow + 2 * U + j] = f(f(dcNew * this.gi[s]) * f(1 - f(gg * gg)));
        dRec[zRow + 3 * U + j] = f(f(dhNew * tc) * hardSigmoidGrad(this.z[zRow + 3 * U + j]));
        const dcPrev = f(dcNew * this.gf[s]);
        dc[e] = keep ? f(dcPrev + f(dc[e] * (1 - m))) : dcPrev;
      }
    }
  }
}
