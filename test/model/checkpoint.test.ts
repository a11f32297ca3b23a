import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { checkpointBytes, parseCheckpoint, type CheckpointContents } from '../../src/model/checkpoint.js';

const contents = (): CheckpointContents => ({
  schema: 'framewise.checkpoint/1',
  settings: { epochs: 5, seed: 1 },
  dataset: { id: 'sha256:ab', videos: 2, clips: 4 },
  state: {
    member: 1,
    done: [{ weights: [Float32Array.of(1, -2.5, 3e-8)], metrics: { epochs: 2 } as never }],
    current: {
      epoch: 2,
      weights: [Float32Array.of(0.1, 0.2), new Float32Array(0), Float32Array.of(Math.PI)],
      optimizer: { iterations: 8, accBeta1: 0.43, accBeta2: 0.99, moments: [Float32Array.of(NaN, Infinity)] },
      rng: { i: 1, j: 2, S: [3, 4] },
      early: { bestEpoch: 1, best: 0.5, wait: 1, stopped: false, weights: null },
      schedule: { lr: 0.001, wait: 0, best: null },
      rows: [{ epoch: 1, loss: 1, acc: 0.5, valLoss: null, valAcc: null, lr: 0.001, seconds: 0.2 }],
    },
    data: { shape: [4, 3, 2], classes: ['a', 'b'], train: 3, val: 1 },
  },
});

describe('checkpoint files', () => {
  it('round-trip every Float32Array to the bit, and everything else as JSON', () => {
    const back = parseCheckpoint(checkpointBytes(contents()));
    expect(back).toEqual(contents());
    expect(back.state.current!.weights[2]).toBeInstanceOf(Float32Array);
    expect(Array.from(back.state.done[0].weights[0])).toEqual(Array.from(Float32Array.of(1, -2.5, 3e-8)));
  });

  it('refuse what is not a checkpoint, or a truncated one, with a ModelError', () => {
    const bytes = checkpointBytes(contents());
    expect(() => parseCheckpoint(new Uint8Array(20), 'x.bin')).toThrow(ModelError);
    expect(() => parseCheckpoint(bytes.subarray(0, bytes.length - 4), 'x.bin')).toThrow(/x.bin is truncated/);
  });
});
