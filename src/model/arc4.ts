/**
 * seedrandom's ARC4 generator (seedrandom 3.x, `seedrandom(seed, { state: true })`), the same
 * doubles from the same state, drawn in bulk: training draws one number per embedding value
 * for dropout (a million and more per epoch), and seedrandom's closure per byte was a tenth of
 * an epoch. Its state is seedrandom's, so checkpoints written before and after read alike.
 */
import type seedrandom from 'seedrandom';

const WIDTH = 256;
const START_DENOM = WIDTH ** 6; // six bytes to start a double
const SIGNIFICANCE = 2 ** 52;
const OVERFLOW = 2 ** 53;

export class Arc4Random {
  private readonly s: Uint8Array;
  private i: number;
  private j: number;

  constructor(state: seedrandom.State.Arc4) {
    this.s = Uint8Array.from(state.S);
    this.i = state.i;
    this.j = state.j;
  }

  /** The state, as seedrandom's `prng.state()` gives it. */
  state(): seedrandom.State.Arc4 {
    return { i: this.i, j: this.j, S: Array.from(this.s) };
  }

  /** The next double in [0, 1): seedrandom's `prng()`. */
  next(): number {
    const out = new Float64Array(1);
    this.fill(out);
    return out[0];
  }

  /** Fills `out` with the next `out.length` doubles, as that many calls of `next()` would. */
  fill(out: Float64Array): void {
    const s = this.s;
    let i = this.i;
    let j = this.j;
    // One ARC4 output byte (seedrandom's `g(1)`), written out where it is used.
    for (let k = 0; k < out.length; k++) {
      let n = 0;
      for (let c = 0; c < 6; c++) {
        i = (i + 1) & 255;
        const t = s[i];
        j = (j + t) & 255;
        s[i] = s[j];
        s[j] = t;
        n = n * WIDTH + s[(s[i] + t) & 255];
      }
      let d = START_DENOM;
      let x = 0;
      while (n < SIGNIFICANCE) {
        n = (n + x) * WIDTH;
        d *= WIDTH;
        i = (i + 1) & 255;
        const t = s[i];
        j = (j + t) & 255;
        s[i] = s[j];
        s[j] = t;
        x = s[(s[i] + t) & 255];
      }
      while (n >= OVERFLOW) {
        n /= 2;
        d /= 2;
        x >>>= 1;
      }
      out[k] = (n + x) / d;
    }
    this.i = i;
    this.j = j;
  }
}
