/**
 * URL inputs: ffmpeg reads `http(s)://` and `ftp://` inputs itself. Over a real HTTP server
 * (with Range requests), a URL probes, plans and decodes to the same frames as the file, and
 * a URL the server does not have is an ENOENT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestError } from '../../src/errors.js';
import { discover } from '../../src/ingest/discover.js';
import { extractClips } from '../../src/ingest/extract.js';
import { ffmpegInput } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { isUrl } from '../../src/ingest/open-policy.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import { COUNTER, fixture } from '../fixtures.js';
import { serveFiles, type FileServer } from '../serve.js';

let server: FileServer;
beforeAll(async () => {
  server = await serveFiles({ 'counter.mp4': fixture(COUNTER.path) });
});
afterAll(() => server?.close());

describe('URL inputs', () => {
  it('are told from paths, and given to ffmpeg as they are (paths as file:)', () => {
    expect(['http://h/a.mp4', 'HTTPS://h/a', 'ftp://h/x'].map(isUrl)).toEqual([true, true, true]);
    expect(['a.mp4', '/abs/http://x', 'file:///a.mp4', 'rtmp://h/live', 'http:/x'].map(isUrl)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(ffmpegInput('http://h/a.mp4')).toBe('http://h/a.mp4');
    expect(ffmpegInput('-i.mp4')).toBe('file:-i.mp4');
  });

  it('probe and decode to the same frames as the file', async () => {
    const url = server.url('counter.mp4');
    const [overHttp, local] = await Promise.all([probe(url), probe(fixture(COUNTER.path))]);
    expect({ ...overHttp, size: 0, mtimeMs: 0 }).toEqual({ ...local, path: url, size: 0, mtimeMs: 0 });
    const plans = planClips(local, { kind: 'uniform', frames: 6 });
    const [a, b] = await Promise.all([
      extractClips(url, plans, { size: 32 }),
      extractClips(fixture(COUNTER.path), plans, { size: 32 }),
    ]);
    expect(a[0].timestamps).toEqual(b[0].timestamps);
    expect(Buffer.from(a[0].data).equals(Buffer.from(b[0].data))).toBe(true);
  });

  it('one the server does not have is an ENOENT', async () => {
    const missing = server.url('nowhere.mp4');
    const error = await probe(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IngestError);
    expect(error).toMatchObject({ code: 'ENOENT', path: missing });
    expect((error as Error).message).toMatch(/404/);
  });

  it('are listed by discover as they are, without a stat', async () => {
    expect(await discover([server.url('counter.mp4'), server.url('later.mp4')])).toEqual([
      { path: server.url('counter.mp4') },
      { path: server.url('later.mp4') },
    ]);
  });
});
