/**
 * A failure while probing or decoding one video is that video's IngestError, from either
 * decoder (asVideoFailure in src/ingest/decoders.ts); framewise's own bugs and aborts pass
 * through untouched.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FfmpegError, IngestError } from '../../src/errors.js';
import { asVideoFailure } from '../../src/ingest/decoders.js';
import { extractClips } from '../../src/ingest/extract.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import { makeBgr4 } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('framewise-decoder-failures-');

describe('asVideoFailure()', () => {
  const path = '/v/a.nut';
  it.each([
    [
      'swscale',
      new Error('Failed to create SwsContext'),
      'UNSUPPORTED',
      /a\.nut: its frames cannot be converted to RGB by this FFmpeg \(Failed to create SwsContext\)/,
    ],
    [
      'an allocation',
      new RangeError('Array buffer allocation failed'),
      'UNSUPPORTED',
      /a frame of it could not be allocated/,
    ],
    [
      'a native allocation',
      new Error('Failed to allocate frame (ENOMEM)'),
      'UNSUPPORTED',
      /could not be allocated/,
    ],
    [
      'anything else node-av throws',
      new Error('Invalid data found when processing input'),
      'CORRUPT',
      /the decoder failed on it \(Invalid data found/,
    ],
  ])("makes %s error the video's IngestError", (_, error, code, message) => {
    const failure = asVideoFailure(path, error);
    expect(failure).toBeInstanceOf(IngestError);
    expect(failure).toMatchObject({ code, path, cause: error });
    expect((failure as Error).message).toMatch(message);
  });

  it.each([
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'data')")],
    ['a ReferenceError', new ReferenceError('x is not defined')],
    ['a RangeError that is not an allocation', new RangeError('Invalid array length')],
    [
      'a FramewiseError',
      new FfmpegError(
        { command: 'ffmpeg', exitCode: null, signal: null, stderr: '', timeoutMs: 5 },
        'TIMEOUT',
      ),
    ],
    ['an abort', new DOMException('This operation was aborted', 'AbortError')],
    ['a value that is not an Error', 'stop'],
  ])("returns %s as it is (framewise's bug, or not the video's failure)", (_, error) => {
    expect(asVideoFailure(path, error)).toBe(error);
  });

  it("returns the signal's reason as it is, whatever it is", () => {
    const controller = new AbortController();
    const reason = new Error('Failed to create SwsContext');
    controller.abort(reason);
    expect(asVideoFailure(path, reason, controller.signal)).toBe(reason);
  });
});

describe('a pixel format swscale cannot convert (4-bit bgr4 in NUT)', () => {
  it.each(['libav', 'cli'] as const)(
    'is UNSUPPORTED from the %s decoder, with the reason',
    async (decoder) => {
      const path = makeBgr4(join(dir, 'bgr4.nut'));
      const info = await probe(path, { decoder });
      expect(info.pixelFormat).toBe('bgr4');
      const error = await extractClips(path, planClips(info, { kind: 'uniform', frames: 2 }), {
        decoder,
        probe: info,
        size: 16,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IngestError);
      expect(error).toMatchObject({ code: 'UNSUPPORTED', path });
      expect((error as Error).message).toMatch(
        /its frames cannot be converted to RGB by this FFmpeg \((Failed to create SwsContext|Impossible to convert between the formats)/,
      );
    },
  );
});
