import { describe, expect, it } from 'vitest';
import { autoIntraOpThreads, describeThreads, sessionOptions, threadPlan } from '../../../src/engines/onnx/runtime.js';

describe('threadPlan()', () => {
  it('takes the threads given, then FRAMEWISE_ONNX_THREADS, then the cores; spinning is off unless FRAMEWISE_ONNX_SPINNING=1', () => {
    expect(threadPlan(3, { FRAMEWISE_ONNX_THREADS: '1' })).toEqual({ intraOpThreads: 3, spinning: false });
    expect(threadPlan(undefined, { FRAMEWISE_ONNX_THREADS: '1', FRAMEWISE_ONNX_SPINNING: '1' })).toEqual({ intraOpThreads: 1, spinning: true });
    expect(threadPlan(undefined, {})).toEqual({ intraOpThreads: autoIntraOpThreads(), spinning: false });
  });

  it.each([
    [{ FRAMEWISE_ONNX_THREADS: '0' }, /Expected a positive integer for `FRAMEWISE_ONNX_THREADS` but received '0'/],
    [{ FRAMEWISE_ONNX_THREADS: 'two' }, /Expected a positive integer for `FRAMEWISE_ONNX_THREADS` but received 'two'/],
    [{ FRAMEWISE_ONNX_SPINNING: 'yes' }, /Expected '0' or '1' for `FRAMEWISE_ONNX_SPINNING` but received 'yes'/],
  ])('rejects %o', (env, message) => {
    expect(() => threadPlan(undefined, env)).toThrow(message);
  });

  it('goes into the session options and the words of the reason', () => {
    const plan = { intraOpThreads: 2, spinning: true };
    expect(sessionOptions(plan)).toMatchObject({ intraOpNumThreads: 2, extra: { session: { intra_op: { allow_spinning: '1' } } } });
    expect(describeThreads(plan)).toBe('2 intra-op threads, spinning on');
    expect(describeThreads({ intraOpThreads: 1, spinning: false })).toBe('1 intra-op thread, spinning off');
  });
});

describe('autoIntraOpThreads()', () => {
  it.each([
    [1, 1],
    [2, 2],
    [4, 3],
    [8, 6],
    [16, 12],
  ])('gives %i cores %i threads', (cores, threads) => {
    expect(autoIntraOpThreads(cores)).toBe(threads);
  });
});
