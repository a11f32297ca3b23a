/**
 * What framewise opens (src/ingest/open-policy.ts): only the declared demuxers and the
 * protocols an input names, on both decoders. A text file, a playlist and a concat list that
 * name other local files are NOT_A_VIDEO; FRAMEWISE_FORMATS widens the list.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IngestError } from '../../src/errors.js';
import { extractClips } from '../../src/ingest/extract.js';
import {
  allowedFormats,
  allowedProtocols,
  FORMATS_ENV,
  isAllowedFormat,
  openOptions,
  refusedFormatIn,
  refusedProtocolIn,
  VIDEO_DEMUXERS,
  withOpenArgs,
} from '../../src/ingest/open-policy.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import { COUNTER, COUNTER_TS, fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('framewise-open-policy-');
const DECODERS = ['libav', 'cli'] as const;

afterEach(() => {
  delete process.env[FORMATS_ENV];
});

/** A README of 60 lines: FFmpeg's `tty` demuxer takes it for ANSI art. */
function readme(): string {
  const path = join(dir, 'readme.txt');
  writeFileSync(
    path,
    Array.from(
      { length: 60 },
      (_, i) => `This is line ${i} of a readme. framewise turns videos into embeddings.`,
    ).join('\n'),
  );
  return path;
}

/** Files that make FFmpeg read another local file: an HLS playlist, and a concat list named .mp4. */
function pullers(): Array<[string, string, string]> {
  copyFileSync(fixture(COUNTER_TS.path), join(dir, 'secret.ts'));
  const playlist = join(dir, 'evil.m3u8');
  writeFileSync(
    playlist,
    `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile:${join(dir, 'secret.ts')}\n#EXT-X-ENDLIST\n`,
  );
  const concat = join(dir, 'evil.mp4');
  writeFileSync(concat, 'ffconcat version 1.0\nfile secret.ts\n');
  return [
    ['an HLS playlist naming a local file', playlist, 'hls'],
    ['a concat list named .mp4', concat, 'concat'],
  ];
}

describe('the open policy', () => {
  it('names the protocols an input may use: file for a path, the scheme and what it runs on for a URL', () => {
    expect(allowedProtocols('/videos/a.mp4')).toEqual(['file']);
    expect(allowedProtocols('http://host/a.mp4')).toEqual(['http', 'tcp']);
    expect(allowedProtocols('HTTPS://host/a.mp4')).toEqual(['https', 'tls', 'tcp', 'httpproxy']);
    expect(openOptions('https://host/a.mp4')).toEqual({
      format_whitelist: VIDEO_DEMUXERS.join(','),
      protocol_whitelist: 'https,tls,tcp,httpproxy',
    });
  });

  it('keeps playlists, concatenation, filter graphs, text and image sequences off the list', () => {
    for (const name of ['tty', 'lavfi', 'hls', 'concat', 'dash', 'image2', 'png_pipe', 'sdp', 'rtsp'])
      expect(isAllowedFormat(name)).toBe(false);
    for (const name of ['mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm', 'avi', 'mpegts', 'gif', 'h264'])
      expect(isAllowedFormat(name)).toBe(true);
  });

  it('puts the options before every -i of an ffmpeg command', () => {
    const args = withOpenArgs([
      '-ss',
      '1',
      '-i',
      'file:/a.mp4',
      '-ss',
      '2',
      '-i',
      'http://h/b.mp4',
      '-f',
      'rawvideo',
    ]);
    const list = VIDEO_DEMUXERS.join(',');
    expect(args).toEqual([
      '-ss',
      '1',
      '-format_whitelist',
      list,
      '-protocol_whitelist',
      'file',
      '-i',
      'file:/a.mp4',
      '-ss',
      '2',
      '-format_whitelist',
      list,
      '-protocol_whitelist',
      'http,tcp',
      '-i',
      'http://h/b.mp4',
      '-f',
      'rawvideo',
    ]);
  });

  it("reads the refused demuxer from FFmpeg's log", () => {
    expect(
      refusedFormatIn(
        "[tty @ 0x3d007600] Format not on whitelist 'mov,matroska'\nfile:a.txt: Invalid argument",
      ),
    ).toBe('tty');
    expect(refusedFormatIn('file:a.txt: Invalid data found when processing input')).toBeUndefined();
    expect(refusedProtocolIn("[http @ 0x1] Protocol 'https' not on whitelist 'http,tcp'!")).toBe('https');
  });

  it(`${FORMATS_ENV} adds demuxers, and a name that is not one is a usage error`, () => {
    process.env[FORMATS_ENV] = 'concat, hls';
    expect(allowedFormats()).toEqual([...VIDEO_DEMUXERS, 'concat', 'hls']);
    process.env[FORMATS_ENV] = 'concat;rm -rf';
    expect(() => allowedFormats()).toThrow(
      /Expected demuxer names .* in \$FRAMEWISE_FORMATS but received 'concat;rm -rf'/,
    );
  });
});

describe.each(DECODERS)('what the %s decoder opens', (decoder) => {
  it('says a text file is NOT_A_VIDEO (FFmpeg would read it as ANSI art)', async () => {
    const path = readme();
    const error = await probe(path, { decoder }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IngestError);
    expect(error).toMatchObject({ code: 'NOT_A_VIDEO', path });
    expect((error as Error).message).toMatch(/is tty, not a video format framewise opens/);
  });

  it.each(pullers())('never reads the files that %s names', async (_, path, format) => {
    const error = await probe(path, { decoder }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NOT_A_VIDEO' });
    expect((error as Error).message).toContain(`is ${format}, not a video format`);
  });

  it('opens a URL over the protocols it names only: an http:// URL redirected to https:// is NETWORK, saying so', async () => {
    const server = createServer((_, res) => {
      res.writeHead(302, { Location: 'https://127.0.0.1:9/v.mp4' });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v.mp4`;
      const error = await probe(url, { decoder, timeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'NETWORK', path: url });
      expect((error as Error).message).toMatch(/a URL opens over the protocols it names only/);
    } finally {
      server.close();
    }
  });

  it('still opens real videos (MP4, MPEG-TS)', async () => {
    for (const path of [fixture(COUNTER.path), fixture(COUNTER_TS.path)]) {
      const info = await probe(path, { decoder });
      const [clip] = await extractClips(path, planClips(info, { kind: 'uniform', frames: 2 }), {
        decoder,
        probe: info,
        size: 16,
      });
      expect(clip.mask).toEqual([true, true]);
    }
  });
});

it(`libav opens a concat list once ${FORMATS_ENV} names concat (the list is what refuses it)`, async () => {
  const [, [, concat]] = pullers();
  process.env[FORMATS_ENV] = 'concat';
  expect((await probe(concat, { decoder: 'libav' })).formatName).toBe('concat');
});
