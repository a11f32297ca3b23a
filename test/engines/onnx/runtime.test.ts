import { describe, expect, it } from 'vitest';
import {
  autoIntraOpThreads,
  autoRunFrames,
  describeThreads,
  sessionOptions,
  threadPlan,
} from '../../../src/engines/onnx/runtime.js';

describe('threadPlan()', () => {
  it('takes what is given, then FRAMEWISE_ONNX_THREADS / FRAMEWISE_ONNX_RUN_FRAMES, then the cores; spinning is off unless FRAMEWISE_ONNX_SPINNING=1', () => {
    expect(
      threadPlan(
        { intraOpThreads: 3, runFrames: 2 },
        { FRAMEWISE_ONNX_THREADS: '1', FRAMEWISE_ONNX_RUN_FRAMES: '8' },
      ),
    ).toEqual({ intraOpThreads: 3, spinning: false, runFrames: 2 });
    expect(
      threadPlan(
        {},
        { FRAMEWISE_ONNX_THREADS: '1', FRAMEWISE_ONNX_RUN_FRAMES: '8', FRAMEWISE_ONNX_SPINNING: '1' },
      ),
    ).toEqual({ intraOpThreads: 1, spinning: true, runFrames: 8 });
    expect(threadPlan({ intraOpThreads: 6 }, {})).toEqual({
      intraOpThreads: 6,
      spinning: false,
      runFrames: 4,
    });
    expect(threadPlan({}, {})).toEqual({
      intraOpThreads: autoIntraOpThreads(),
      spinning: false,
      runFrames: autoRunFrames(autoIntraOpThreads()),
    });
  });

  it.each([
    [
      { FRAMEWISE_ONNX_THREADS: '0' },
      /Expected a positive integer for `FRAMEWISE_ONNX_THREADS` but received '0'/,
    ],
    [
      { FRAMEWISE_ONNX_THREADS: 'two' },
      /Expected a positive integer for `FRAMEWISE_ONNX_THREADS` but received 'two'/,
    ],
    [
      { FRAMEWISE_ONNX_RUN_FRAMES: '1.5' },
      /Expected a positive integer for `FRAMEWISE_ONNX_RUN_FRAMES` but received '1.5'/,
    ],
    [
      { FRAMEWISE_ONNX_SPINNING: 'yes' },
      /Expected '0' or '1' for `FRAMEWISE_ONNX_SPINNING` but received 'yes'/,
    ],
  ])('rejects %o', (env, message) => {
    expect(() => threadPlan({}, env)).toThrow(message);
  });

  it('goes into the session options and the words of the reason', () => {
    const plan = { intraOpThreads: 2, spinning: true, runFrames: 4 };
    expect(sessionOptions(plan)).toMatchObject({
      intraOpNumThreads: 2,
      extra: { session: { intra_op: { allow_spinning: '1' } } },
    });
    expect(describeThreads(plan)).toBe('2 intra-op threads, spinning on, 4 frames a run');
    expect(describeThreads({ intraOpThreads: 1, spinning: false, runFrames: 1 })).toBe(
      '1 intra-op thread, spinning off, 1 frame a run',
    );
  });
});

describe('autoIntraOpThreads() and autoRunFrames()', () => {
  it.each([
    [1, 1, 1],
    [2, 2, 1],
    [4, 3, 4],
    [8, 6, 4],
    [16, 12, 4],
  ])('give %i cores %i threads and %i frames a run', (cores, threads, frames) => {
    expect(autoIntraOpThreads(cores)).toBe(threads);
    expect(autoRunFrames(threads)).toBe(frames);
  });
});
