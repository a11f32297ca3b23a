import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { Arc4Random } from '../../src/model/arc4.js';

describe('Arc4Random', () => {
  it("draws seedrandom's doubles from seedrandom's state, and ends in the same state", () => {
    for (const seed of ['7/train', '42/train', '']) {
      const reference = seedrandom(seed, { state: true });
      const fast = new Arc4Random(reference.state());
      const bulk = new Float64Array(200_000);
      fast.fill(bulk);
      let differing = 0;
      for (const v of bulk) if (reference() !== v) differing++;
      for (let k = 0; k < 100; k++) if (reference() !== fast.next()) differing++;
      expect(differing).toBe(0);
      expect(fast.state()).toEqual(reference.state());
    }
  });

  it('resumes from a saved state where it left off', () => {
    const a = new Arc4Random(seedrandom('3', { state: true }).state());
    a.fill(new Float64Array(123));
    const b = new Arc4Random(a.state());
    expect(b.next()).toBe(a.next());
  });
});
