/**
 * The parity matrix: the in-process decoder (libav) against the CLI decoder over the axes
 * that change which frame a time gets. Each video is made here by the ffmpeg binary the CLI
 * path uses (128x96, a few seconds); the set is a fixed covering selection of
 * GOP (1, 5, 12, 30, 250) x frame rate (24, 30, 60, VFR) x B-frames x container (mp4, mov,
 * mkv, webm, avi, ts) x codec (h264, hevc, vp9, av1, mpeg4, mjpeg) x bit depth (8, 10), and
 * each video is read under three of the samplings below (uniform, fps, window, one frame,
 * spans that start 0-3 s in), rotated so that every sampling meets several containers.
 *
 * Exact mode: the same timestamps and masks, pixels within 2/255, and on a constant-rate
 * video every real frame is the frame on display at its planned time (pts <= t < pts + 1/fps).
 * Keyframe mode: the same keyframes, the nearest inside the clip's span, repeats masked.
 *
 * AV1 comes from the bundled ffmpeg's libaom, which is slow: its video is 2 s at 12 fps.
 */
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractClips } from '../../src/ingest/extract.js';
import { resolveBinaries } from '../../src/ingest/decoders/cli/ffmpeg.js';
import { probe } from '../../src/ingest/probe.js';
import { planClips } from '../../src/ingest/sampling.js';
import type { ClipPlan, FrameClip, Sampling } from '../../src/ingest/types.js';
import { tempDir } from '../helpers.js';

const run = promisify(execFile);
const scratch = tempDir('framewise-parity-');

interface Case {
  name: string;
  file: string;
  fps: number;
  seconds: number;
  /** ffmpeg output arguments (codec, GOP, B-frames, pixel format). */
  args: string[];
  /** An input filter (VFR). */
  vf?: string;
  vfr?: boolean;
  /** AVI with B-frames: packets carry no pts. */
  noPts?: boolean;
  /** Samplings this video gets besides its share of the rotation (the cases the issue reported). */
  extra?: Sampling[];
}

const x264 = (gop: number, bframes: number, pix = 'yuv420p'): string[] => [
  '-c:v',
  'libx264',
  '-g',
  String(gop),
  '-keyint_min',
  String(gop),
  '-bf',
  String(bframes),
  '-pix_fmt',
  pix,
];
const x265 = (gop: number, bframes: number, pix = 'yuv420p'): string[] => [
  '-c:v',
  'libx265',
  '-x265-params',
  `log-level=error:keyint=${gop}:min-keyint=${gop}:bframes=${bframes}`,
  '-pix_fmt',
  pix,
];
const vp9 = (gop: number): string[] => [
  '-c:v',
  'libvpx-vp9',
  '-g',
  String(gop),
  '-b:v',
  '150k',
  '-deadline',
  'realtime',
  '-cpu-used',
  '8',
];

const CASES: Case[] = [
  {
    name: 'h264 mp4, GOP 30 at 60 fps (a keyframe every 0.5 s), B-frames',
    file: 'h264-g30-60.mp4',
    fps: 60,
    seconds: 4,
    args: x264(30, 3),
  },
  {
    name: 'h264 mov, all-intra (GOP 1), 24 fps',
    file: 'h264-g1-24.mov',
    fps: 24,
    seconds: 4,
    args: x264(1, 0),
  },
  {
    name: 'h264 mkv, GOP 12, 30 fps, no B-frames',
    file: 'h264-g12-30.mkv',
    fps: 30,
    seconds: 4,
    args: x264(12, 0),
  },
  {
    name: 'h264 avi, GOP 5, 30 fps, B-frames (no pts)',
    file: 'h264-g5-30.avi',
    fps: 30,
    seconds: 4,
    args: x264(5, 2),
    noPts: true,
  },
  {
    name: 'h264 ts, GOP 12, 24 fps, B-frames',
    file: 'h264-g12-24.ts',
    fps: 24,
    seconds: 4,
    args: x264(12, 3),
  },
  {
    name: 'h264 ts, GOP 30, 60 fps, no B-frames',
    file: 'h264-g30-60.ts',
    fps: 60,
    seconds: 4,
    args: x264(30, 0),
  },
  {
    name: 'h264 avi, GOP 20 at 25 fps (a keyframe every 0.8 s)',
    file: 'h264-g20-25.avi',
    fps: 25,
    seconds: 4,
    args: x264(20, 0),
    // One frame at 2.55 s: read from the start, two GOPs past the keyframe at 0.8 s.
    extra: [{ kind: 'uniform', frames: 1, start: 1.1 }],
  },
  {
    name: 'h264 mp4, GOP 250 (one GOP), 24 fps, B-frames',
    file: 'h264-g250-24.mp4',
    fps: 24,
    seconds: 4,
    args: x264(250, 3),
  },
  {
    name: 'h264 mp4, variable frame rate',
    file: 'h264-vfr.mp4',
    fps: 30,
    seconds: 4,
    args: ['-vsync', 'vfr', ...x264(12, 2)],
    vf: "select='not(mod(n\\,3))+between(t\\,1\\,2)'",
    vfr: true,
  },
  {
    name: 'h264 10-bit mkv, GOP 30, 30 fps, B-frames',
    file: 'h264-10bit.mkv',
    fps: 30,
    seconds: 4,
    args: x264(30, 3, 'yuv420p10le'),
  },
  {
    name: 'hevc mkv, GOP 12, 30 fps, B-frames',
    file: 'hevc-g12-30.mkv',
    fps: 30,
    seconds: 4,
    args: x265(12, 3),
  },
  {
    name: 'hevc 10-bit mp4, GOP 5, 24 fps, no B-frames',
    file: 'hevc-10bit.mp4',
    fps: 24,
    seconds: 4,
    args: [...x265(5, 0, 'yuv420p10le'), '-tag:v', 'hvc1'],
  },
  {
    name: 'hevc ts, GOP 250, 24 fps, B-frames',
    file: 'hevc-g250-24.ts',
    fps: 24,
    seconds: 4,
    args: x265(250, 3),
  },
  { name: 'vp9 webm, GOP 30, 24 fps', file: 'vp9-g30-24.webm', fps: 24, seconds: 4, args: vp9(30) },
  { name: 'vp9 mkv, GOP 5, 60 fps', file: 'vp9-g5-60.mkv', fps: 60, seconds: 4, args: vp9(5) },
  {
    name: 'av1 webm, GOP 6, 12 fps',
    file: 'av1-g6-12.webm',
    fps: 12,
    seconds: 2,
    args: [
      '-c:v',
      'libaom-av1',
      '-strict',
      'experimental',
      '-cpu-used',
      '8',
      '-lag-in-frames',
      '0',
      '-b:v',
      '40k',
      '-g',
      '6',
    ],
  },
  {
    name: 'mpeg4 avi, GOP 12, 24 fps, B-frames (packed, no pts)',
    file: 'mpeg4-g12-24.avi',
    fps: 24,
    seconds: 4,
    args: ['-c:v', 'mpeg4', '-g', '12', '-bf', '2', '-vtag', 'XVID'],
    noPts: true,
  },
  {
    name: 'mpeg4 mp4, GOP 30, 30 fps',
    file: 'mpeg4-g30-30.mp4',
    fps: 30,
    seconds: 4,
    args: ['-c:v', 'mpeg4', '-g', '30', '-q:v', '5'],
  },
  {
    name: 'mjpeg avi, 24 fps',
    file: 'mjpeg-24.avi',
    fps: 24,
    seconds: 4,
    args: ['-c:v', 'mjpeg', '-q:v', '5', '-pix_fmt', 'yuvj420p'],
  },
  {
    name: 'mjpeg mov, 30 fps',
    file: 'mjpeg-30.mov',
    fps: 30,
    seconds: 4,
    args: ['-c:v', 'mjpeg', '-q:v', '5', '-pix_fmt', 'yuvj420p'],
  },
];

/** The samplings, each applied to the videos whose index it meets in the rotation below. */
const SAMPLINGS: Sampling[] = [
  { kind: 'uniform', frames: 8 },
  { kind: 'fps', fps: 5, frames: 4 },
  { kind: 'window', length: 1, stride: 0.9, frames: 3 },
  { kind: 'uniform', frames: 1 },
  { kind: 'uniform', frames: 6, start: 1.7, end: 3.9 },
  { kind: 'window', length: 0.8, stride: 1.1, frames: 4, start: 1.1 },
  { kind: 'fps', fps: 7, frames: 5, start: 0.6 },
  { kind: 'uniform', frames: 1, start: 2.9 },
];
/** Video i gets samplings i, i+3 and i+5 (mod 8): a fixed covering of videos by samplings. */
const samplingsOf = (i: number): Sampling[] => [
  ...[0, 3, 5]
    .map((k) => SAMPLINGS[(i + k) % SAMPLINGS.length])
    .filter((s) => (s.start ?? 0) < CASES[i].seconds - 0.5),
  ...(CASES[i].extra ?? []),
];

const path = (c: Case): string => join(scratch, c.file);

beforeAll(async () => {
  const { ffmpeg } = resolveBinaries();
  const make = (c: Case) =>
    run(ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=128x96:rate=${c.fps}`,
      '-t',
      String(c.seconds),
      ...(c.vf ? ['-vf', c.vf] : []),
      ...c.args,
      '-y',
      path(c),
    ]);
  // Two at a time (2 cores); the slow AV1 first.
  const queue = [...CASES].sort(
    (a, b) => Number(b.file.startsWith('av1')) - Number(a.file.startsWith('av1')),
  );
  await Promise.all(
    [0, 1].map(async () => {
      for (let c = queue.shift(); c; c = queue.shift()) await make(c);
    }),
  );
}, 240_000);

const frameOf = (clip: FrameClip, k: number): Uint8Array =>
  clip.data.subarray(k * clip.shape[1] * clip.shape[2] * 3, (k + 1) * clip.shape[1] * clip.shape[2] * 3);
const maxDiff = (a: Uint8Array, b: Uint8Array): number =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

async function both(file: string, sampling: Sampling, seek: 'exact' | 'keyframe') {
  const info = await probe(file, { decoder: 'cli' });
  const plans: ClipPlan[] = planClips(info, sampling);
  const cli = await extractClips(file, plans, { decoder: 'cli', seek, probe: info, size: 32 });
  const libav = await extractClips(file, plans, { decoder: 'libav', seek, probe: info, size: 32 });
  return { info, plans, cli, libav };
}

/** Timestamps and masks side by side, for a failure message that shows both. */
const show = (clips: FrameClip[]): string[] =>
  clips.map((c) => c.timestamps.map((t, k) => `${t}${c.mask[k] ? '' : '*'}`).join(' '));

describe('parity matrix: libav and the CLI return the same frames', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('exact: %s', async (_, c, i) => {
    for (const sampling of samplingsOf(i)) {
      const { plans, cli, libav } = await both(path(c), sampling, 'exact');
      const what = `${JSON.stringify(sampling)}\ncli   ${show(cli).join(' | ')}\nlibav ${show(libav).join(' | ')}`;
      expect(
        libav.map((clip) => clip.timestamps),
        what,
      ).toEqual(cli.map((clip) => clip.timestamps));
      expect(
        libav.map((clip) => clip.mask),
        what,
      ).toEqual(cli.map((clip) => clip.mask));
      for (let n = 0; n < cli.length; n++) {
        for (let k = 0; k < cli[n].timestamps.length; k++) {
          expect(
            maxDiff(frameOf(libav[n], k), frameOf(cli[n], k)),
            `${what}\nclip ${n} frame ${k}`,
          ).toBeLessThanOrEqual(2);
          // The frame on display at the planned time (constant rate: every frame lasts 1/fps;
          // Matroska and WebM round timestamps to 1 ms).
          const [t, pts] = [plans[n].timestamps[k], cli[n].timestamps[k]];
          if (!c.vfr && cli[n].mask[k])
            expect(pts <= t + 1e-3 && t < pts + 1 / c.fps + 1e-3, `${what}\nplanned ${t}, got ${pts}`).toBe(
              true,
            );
        }
      }
    }
  });
});

/** Every keyframe's time, from a full decode with showinfo (independent of either decoder's skipping). */
function keyframesOf(file: string): number[] {
  const log = spawnSync(
    resolveBinaries().ffmpeg,
    ['-hide_banner', '-copyts', '-i', `file:${file}`, '-map', '0:v:0', '-vf', 'showinfo', '-f', 'null', '-'],
    { encoding: 'utf8' },
  ).stderr;
  return [...log.matchAll(/pts_time:\s*(\S+).*?iskey:1/g)].map((m) => Number(m[1]));
}

describe('parity matrix: keyframe mode', () => {
  const KEYFRAME_CASES = [0, 1, 3, 4, 6, 10, 12, 13, 14, 16];
  const KEYFRAME_SAMPLINGS: Sampling[] = [
    { kind: 'window', length: 2, stride: 2, frames: 8 }, // 8 frames over 2 s: repeats
    { kind: 'uniform', frames: 1, start: 1.1 },
    { kind: 'uniform', frames: 5 },
  ];
  it.each(KEYFRAME_CASES.map((i) => [CASES[i].name, CASES[i]] as const))(
    '%s: the nearest keyframe inside each clip, repeats masked',
    async (_, c) => {
      const keys = keyframesOf(path(c));
      for (const sampling of KEYFRAME_SAMPLINGS) {
        const { plans, cli, libav } = await both(path(c), sampling, 'keyframe');
        const what = `${JSON.stringify(sampling)}\nkeys  ${keys.join(' ')}\ncli   ${show(cli).join(' | ')}\nlibav ${show(libav).join(' | ')}`;
        expect(
          libav.map((clip) => clip.timestamps),
          what,
        ).toEqual(cli.map((clip) => clip.timestamps));
        expect(
          libav.map((clip) => clip.mask),
          what,
        ).toEqual(cli.map((clip) => clip.mask));
        for (let n = 0; n < cli.length; n++) {
          const { start, end, timestamps: planned } = plans[n];
          const inside = keys.filter((k) => k >= start - 1e-3 && k <= end + 1e-3);
          const seen = new Set<number>();
          let repeats = 0;
          cli[n].timestamps.forEach((t, k) => {
            expect(
              maxDiff(frameOf(libav[n], k), frameOf(cli[n], k)),
              `${what}\nclip ${n} frame ${k}`,
            ).toBeLessThanOrEqual(2);
            // The nearest keyframe inside the span, within showinfo's rounding. Without pts
            // (AVI with B-frames) a keyframe decoded alone is timed otherwise than in a full
            // decode: there, the two decoders' agreement is the check.
            if (inside.length > 0 && !c.noPts) {
              const best = Math.min(...inside.map((key) => Math.abs(key - planned[k])));
              expect(Math.abs(Math.abs(t - planned[k]) - best), `${what}\nclip ${n} frame ${k}`).toBeLessThan(
                2e-3,
              );
            }
            // No keyframe in the span: the nearest outside it, never real.
            const real = inside.length > 0 && !seen.has(t) && plans[n].mask[k];
            if (inside.length > 0 && seen.has(t)) repeats++;
            if (!c.noPts) expect(cli[n].mask[k], `${what}\nclip ${n} frame ${k}`).toBe(real);
            seen.add(t);
          });
          if (repeats > 0 && !c.noPts)
            expect(cli[n].warnings?.join('\n')).toContain(
              `${repeats} of ${planned.length} frames repeat a keyframe`,
            );
        }
      }
    },
  );
});

describe('no real frame, and frames outside their clip', () => {
  /** The error code, or the clips' timestamps and masks. */
  const outcome = async (file: string, sampling: Sampling, decoder: 'cli' | 'libav'): Promise<string> => {
    try {
      const info = await probe(file, { decoder });
      return show(
        await extractClips(file, planClips(info, sampling), { decoder, probe: info, size: 16 }),
      ).join(' | ');
    } catch (error) {
      return (error as { code?: string }).code ?? String(error);
    }
  };

  it('a 1-frame MJPEG stream ahead of the real one (Matroska): CORRUPT on both decoders', async () => {
    const { ffmpeg } = resolveBinaries();
    const [one, file] = [join(scratch, 'one-mjpeg.mkv'), join(scratch, 'mjpeg-first.mkv')];
    await run(ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=128x96:rate=24',
      '-frames:v',
      '1',
      '-c:v',
      'mjpeg',
      '-pix_fmt',
      'yuvj420p',
      '-y',
      one,
    ]);
    await run(ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-i',
      one,
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=128x96:rate=24',
      '-t',
      '3',
      '-map',
      '0:v',
      '-map',
      '1:v',
      '-c:v:0',
      'copy',
      '-c:v:1',
      'libx264',
      '-y',
      file,
    ]);
    for (const decoder of ['cli', 'libav'] as const)
      expect(await outcome(file, { kind: 'uniform', frames: 8 }, decoder), decoder).toBe('CORRUPT');
  });

  it('a frame past a gap in a variable-rate video lies outside its window: not real, with a warning, on both decoders', async () => {
    // Frames in [0, 1) s and [3, 4) s only: the window [1.5, 2.5) gets the frame at 3 s.
    const { ffmpeg } = resolveBinaries();
    const file = join(scratch, 'gap.mp4');
    await run(ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=128x96:rate=24',
      '-t',
      '4',
      '-vf',
      "select='lt(t\\,1)+gte(t\\,3)'",
      '-vsync',
      'vfr',
      ...x264(12, 0),
      '-y',
      file,
    ]);
    const sampling: Sampling = { kind: 'window', length: 1, stride: 1, frames: 2, start: 0.5, end: 2.5 };
    const [cli, libav] = [await outcome(file, sampling, 'cli'), await outcome(file, sampling, 'libav')];
    expect(libav).toBe(cli);
    expect(cli.split(' | ')[1]).toBe('3* 3*');
    const info = await probe(file);
    const clips = await extractClips(file, planClips(info, sampling), {
      decoder: 'libav',
      probe: info,
      size: 16,
    });
    expect(clips[1].warnings).toContain(
      "2 of 2 frames lie outside the clip's span 1.500000-2.500000 s: masked",
    );
  });
});

describe('a GOP longer than a stretch', () => {
  it('a target more packets past its keyframe than libav holds: libav hands the video to the CLI, with the same frame', async () => {
    // One GOP of 9000 frames; the frame at 175 s lies 8750 packets past the only keyframe.
    const file = join(scratch, 'one-gop.mp4');
    const { ffmpeg } = resolveBinaries();
    await run(ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=64x48:rate=50',
      '-t',
      '180',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '100000',
      '-sc_threshold',
      '0',
      '-y',
      file,
    ]);
    const { cli, libav } = await both(file, { kind: 'uniform', frames: 2, start: 170 }, 'exact');
    expect(libav.map((c) => [c.decoder, c.timestamps, c.mask])).toEqual([
      ['cli', [172.5, 177.5], [true, true]],
    ]);
    expect(libav[0].timestamps).toEqual(cli[0].timestamps);
  });
});
