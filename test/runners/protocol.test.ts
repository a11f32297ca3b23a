import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QueueError, UsageError } from '../../src/errors.js';
import { checkQueueName, checkRedisUrl } from '../../src/runners/options.js';
import {
  decodeResult,
  encodeResult,
  jobData,
  jobId,
  redactUrl,
  type JobSettings,
} from '../../src/runners/protocol.js';

const settings: JobSettings = {
  sampling: { kind: 'uniform', frames: 4 },
  size: 224,
  fit: 'cover',
  seek: 'exact',
};
const identity = { size: 10, mtimeMs: 1, headTail: 'ab' };

describe('job ids', () => {
  it('are stable for the same work and differ when anything that decides the embeddings differs', () => {
    const id = jobId(identity, { path: 'a.mp4' }, settings, 'bb-1');
    expect(id).toMatch(/^fw-[0-9a-f]{40}$/);
    // The file's identity, not its name: the same file under another name is the same work.
    expect(jobId(identity, { path: 'b.mp4' }, settings, 'bb-1')).toBe(id);
    // A timeout does not change the embeddings.
    expect(jobId(identity, { path: 'a.mp4' }, { ...settings, timeoutMs: 5000 }, 'bb-1')).toBe(id);
    const others = [
      jobId({ ...identity, mtimeMs: 2 }, { path: 'a.mp4' }, settings, 'bb-1'),
      jobId(identity, { path: 'a.mp4', start: 1 }, settings, 'bb-1'),
      jobId(identity, { path: 'a.mp4' }, { ...settings, sampling: { kind: 'uniform', frames: 5 } }, 'bb-1'),
      jobId(identity, { path: 'a.mp4' }, { ...settings, fit: 'contain' }, 'bb-1'),
      jobId(identity, { path: 'a.mp4' }, { ...settings, seek: 'keyframe' }, 'bb-1'),
      jobId(identity, { path: 'a.mp4' }, settings, 'bb-2'),
      jobId({ path: 'a.mp4' }, { path: 'a.mp4' }, settings, 'bb-1'),
    ];
    expect(new Set([id, ...others]).size).toBe(others.length + 1);
  });

  it('job data carries an absolute path, the span, the settings and the backbone id', () => {
    expect(jobData({ path: 'v/a.mp4', start: 1, end: 2, label: 'x' } as never, settings, 'bb')).toEqual({
      v: 2,
      item: { path: resolve('v/a.mp4'), start: 1, end: 2 },
      settings,
      backboneId: 'bb',
    });
    expect(jobData({ path: 'https://cdn.example/a.mp4' }, settings, 'bb').item.path).toBe(
      'https://cdn.example/a.mp4',
    );
  });
});

describe('results', () => {
  it('round-trip frames exactly through JSON, whatever the array offset', () => {
    const backing = new Float32Array(1 + 2 * 4 * 3);
    backing.forEach((_, i) => (backing[i] = Math.fround(Math.sin(i) * 1e3)));
    const embeddings = backing.subarray(1); // an offset view, as a runner may give
    const clips = [0, 1].map((index) => ({
      index,
      start: index,
      end: index + 1,
      timestamps: [0, 0.25, 0.5, 0.75],
      mask: [true, true, true, false],
    }));
    const wire = JSON.parse(
      JSON.stringify(
        encodeResult('host-a', {
          path: 'x',
          clips,
          frames: 4,
          dim: 3,
          embeddings,
          cached: false,
          backend: 'onnx',
        }),
      ),
    );
    const { host, outcome } = decodeResult('coordinator/x.mp4', wire);
    expect(host).toBe('host-a');
    expect(outcome).toEqual({
      path: 'coordinator/x.mp4',
      clips,
      frames: 4,
      dim: 3,
      embeddings: new Float32Array(embeddings),
      cached: false,
      backend: 'onnx',
    });
  });

  it("name the engine as `engine` and keep `backend` for the tfjs backend, and read an older worker's `backend`", () => {
    const video = { path: 'x', clips: [], frames: 4, dim: 3, embeddings: new Float32Array(0), cached: true };
    const onnx = encodeResult('h', { ...video, backend: 'onnx' }) as { video: object };
    expect(onnx.video).toMatchObject({ engine: 'onnx' });
    expect(onnx.video).not.toHaveProperty('backend');
    expect(encodeResult('h', { ...video, backend: 'wasm' })).toMatchObject({
      video: { engine: 'tfjs', backend: 'wasm' },
    });
    expect(decodeResult('x', onnx).outcome).toMatchObject({ backend: 'onnx' });
    // A worker before `engine` sent what ran as `backend`.
    const older = { ...onnx, video: { ...onnx.video, engine: undefined, backend: 'onnx' } };
    expect(decodeResult('x', older).outcome).toMatchObject({ backend: 'onnx' });
  });

  it("round-trip an error record under the coordinator's path", () => {
    const wire = encodeResult('host-b', {
      path: '/abs/x.mp4',
      error: { code: 'NOT_A_VIDEO', message: 'no video stream' },
    });
    expect(decodeResult('x.mp4', wire)).toEqual({
      host: 'host-b',
      outcome: { path: 'x.mp4', error: { code: 'NOT_A_VIDEO', message: 'no video stream' } },
    });
  });

  it('a result of another protocol or of the wrong size is a QueueError', () => {
    expect(() => decodeResult('x', { v: 99, host: 'h' })).toThrow(QueueError);
    expect(() => decodeResult('x', null)).toThrow(/run the same framewise version everywhere/);
    const wire = encodeResult('h', {
      path: 'x',
      clips: [{ index: 0, start: 0, end: 1, timestamps: [0], mask: [true] }],
      frames: 1,
      dim: 2,
      embeddings: new Float32Array(2),
      cached: true,
    });
    expect(() =>
      decodeResult('x', { ...wire, video: { ...(wire as { video: object }).video, dim: 3 } }),
    ).toThrow(/returned 8 bytes of embeddings for x, expected 12/);
  });
});

describe('queue settings', () => {
  it('take redis:// and rediss:// URLs and plain queue names', () => {
    expect(checkRedisUrl('--redis', 'redis://h:6379/2')).toBe('redis://h:6379/2');
    expect(checkRedisUrl('--redis', 'rediss://user:pw@h')).toBe('rediss://user:pw@h');
    for (const bad of ['http://h', 'h:6379', '', 42, 'redis://'])
      expect(() => checkRedisUrl('--redis', bad)).toThrow(UsageError);
    expect(checkQueueName('--queue', 'nightly-2.a_b')).toBe('nightly-2.a_b');
    for (const bad of ['a:b', '', 'a b', 7]) expect(() => checkQueueName('--queue', bad)).toThrow(UsageError);
  });

  it('never print a password', () => {
    expect(redactUrl('redis://user:secret@h:6379/1')).toBe('redis://user:***@h:6379/1');
    expect(redactUrl('redis://h:6379')).toBe('redis://h:6379');
  });
});
