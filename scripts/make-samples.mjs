#!/usr/bin/env node
/**
 * Makes framewise's videos from ffmpeg's synthetic sources. Deterministic: the same ffmpeg
 * gives the same files (single-threaded x264, bit-exact container, no random choices
 * outside a fixed-seed PRNG).
 *
 *   node scripts/make-samples.mjs                  samples/ (committed) and the test fixtures
 *   node scripts/make-samples.mjs --samples-only [--samples-dir DIR]   only samples/ (or DIR)
 *   node scripts/make-samples.mjs --fixtures-only [--fixtures-dir DIR] [--force]
 *   node scripts/make-samples.mjs --three-class DIR    the 24-video training set of issue 32 (see makeThreeClassSet)
 *
 * The fixtures go to --fixtures-dir, else $FRAMEWISE_FIXTURES, else
 * <os.tmpdir()>/framewise-fixtures-v1. A `.complete` stamp holding FIXTURES_VERSION marks a
 * finished set; a current stamp makes this a no-op. Concurrent callers (several test runs
 * at once) are serialised by a lock directory, and the set is built in a temporary folder
 * and renamed into place, so a reader never sees a half-written set.
 *
 * Layout of the fixtures (the contract the tests rely on):
 *   arrow/forward/<scene>.mp4, arrow/reversed/<scene>.mp4, arrow/train.csv, arrow/test.csv
 *   segments/seg-NN.mp4, segments/train.jsonl, segments/test.jsonl
 *   edge/...  (see EDGE below)
 *
 * ffmpeg: $FFMPEG_PATH, else the binary of @ffmpeg-installer/ffmpeg (the same resolution as
 * src/ingest/decoders/cli/ffmpeg.ts; this script runs under plain node, so it cannot import TS source).
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import seedrandom from 'seedrandom';

/** Bump when the fixture set changes: stale sets are rebuilt. */
export const FIXTURES_VERSION = '2.3';

const ROOT = resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);

function ffmpegPath() {
  if (process.env.FFMPEG_PATH) return process.env.FFMPEG_PATH;
  try {
    return require('@ffmpeg-installer/ffmpeg').path;
  } catch (error) {
    throw new Error(`No ffmpeg: set FFMPEG_PATH or install @ffmpeg-installer/ffmpeg (${error.message})`);
  }
}
const FFMPEG = ffmpegPath();

// ---------------------------------------------------------------------------------------
// Running ffmpeg, two at a time (the machines have 2 cores).

function ffmpeg(args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(FFMPEG, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else
        reject(
          new Error(
            `ffmpeg ${args.join(' ')} failed (${signal ?? code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`,
          ),
        );
    });
  });
}

async function runAll(jobs, concurrency = 2) {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      await job();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
}

/** H.264 in MP4, single-threaded for determinism, short GOP so seeking stays cheap. */
const X264 = [
  '-c:v',
  'libx264',
  '-preset',
  'veryfast',
  '-crf',
  '20',
  '-g',
  '12',
  '-threads',
  '1',
  '-pix_fmt',
  'yuv420p',
];
const BITEXACT = [
  '-fflags',
  '+bitexact',
  '-flags:v',
  '+bitexact',
  '-map_metadata',
  '-1',
  '-movflags',
  '+faststart',
];

function lavfi(graph, out, extra = []) {
  mkdirSync(dirname(out), { recursive: true });
  return ffmpeg(['-filter_threads', '1', '-f', 'lavfi', '-i', graph, ...X264, ...extra, ...BITEXACT, out]);
}

// ---------------------------------------------------------------------------------------
// Arrow of time. Every scene obeys the same "physics" in forward time, so a temporal model
// trained on some scenes generalises to others: a detailed, moving picture is progressively
// covered by flat colour (a growing shape, a fill from one side, a dissolve), or magnified
// (zoom in: fewer, larger structures). Reversed, detail
// emerges from flat colour or shrinks. (An earlier set also had fade-ins from black; their
// reversal, a fade to flat colour, contradicted the other families and the held-out
// accuracy of an LSTM on MobileNetV2 features suffered; so did pixels switching to a flat
// colour in a fixed pattern, whose fine stripes mid-way read as more detail, not less.) A reversed clip holds exactly the same frames in the opposite order (the
// `reverse` filter on the same raw frames, encoded once), so a model that ignores order
// (mean pooling) cannot tell the two apart.

const AW = 160;
const AH = 120;
const AFPS = 12;
const AFRAMES = 36; // 3 s
const ADUR = AFRAMES / AFPS;

const src = {
  testsrc2: `testsrc2=s=${AW}x${AH}:r=${AFPS}`,
  smpte: `smptebars=s=${AW}x${AH}:r=${AFPS}`,
  smptehd: `smptehdbars=s=${AW}x${AH}:r=${AFPS}`,
  pal: `pal75bars=s=${AW}x${AH}:r=${AFPS}`,
  rgb: `rgbtestsrc=s=${AW}x${AH}:r=${AFPS}`,
  cell: (rule) => `cellauto=s=${AW}x${AH}:r=${AFPS}:rule=${rule}:random_seed=7:random_fill_ratio=0.5`,
  life: (seed, color) =>
    `life=s=${AW}x${AH}:r=${AFPS}:seed=${seed}:ratio=0.3:mold=8:life_color=${color}:death_color=#202020:mold_color=#404080`,
  mandel: (x, y, scale = 1.5) =>
    `mandelbrot=s=${AW}x${AH}:r=${AFPS}:maxiter=160:start_x=${x}:start_y=${y}:start_scale=${scale}`,
};

/** Zoom into (cx, cy) (fractions of the frame) from 1x to `to`x over the clip. */
const zoom = (source, cx, cy, to = 3) =>
  `${source},zoompan=z='1+on*${((to - 1) / (AFRAMES - 1)).toFixed(5)}':d=1:fps=${AFPS}:s=${AW}x${AH}:x='${cx}*iw-iw/zoom/2':y='${cy}*ih-ih/zoom/2'`;
/** An RGB per-pixel rule over a source: `inside` is an expression true where the new colour is. */
const paint = (source, inside, [r, g, b]) =>
  `${source},format=gbrp,geq=r='if(${inside},${r},r(X,Y))':g='if(${inside},${g},g(X,Y))':b='if(${inside},${b},b(X,Y))'`;
/** A disk (or square, diamond) growing from (cx, cy) until it covers most of the frame. */
const grow = (source, cx, cy, colour, shape = 'disk') => {
  const d = {
    disk: `hypot(X-${cx}*W,Y-${cy}*H)`,
    square: `max(abs(X-${cx}*W),abs(Y-${cy}*H))`,
    diamond: `abs(X-${cx}*W)+abs(Y-${cy}*H)`,
  }[shape];
  // Reach 90% of the farthest corner on the last frame: the clip keeps changing to the end.
  const [fx, fy] = [Math.max(cx, 1 - cx) * AW, Math.max(cy, 1 - cy) * AH];
  const far = { disk: Math.hypot(fx, fy), square: Math.max(fx, fy), diamond: fx + fy }[shape];
  return paint(source, `lte(${d},3+T*${((0.9 * far) / ADUR).toFixed(3)})`, colour);
};
/** A flat colour filling the frame from one side. */
const fill = (source, from, colour) => {
  const f = `(T/${ADUR})`;
  const inside = {
    left: `lt(X,W*${f})`,
    bottom: `gt(Y,H*(1-${f}))`,
    top: `lt(Y,H*${f})`,
    diagonal: `lt(X/W+Y/H,2*${f})`,
  }[from];
  return paint(source, inside, colour);
};
/** The whole picture dissolves into a flat colour. */
const fadeTo = (source, colour) => `${source},fade=t=out:st=0:d=${ADUR}:color=${colour}`;

/** 16 training scenes and 10 test scenes; every family is in both, never the same scene. */
export const ARROW_SCENES = {
  train: {
    'zoom-testsrc2': zoom(src.testsrc2, 0.5, 0.5),
    'zoom-smpte': zoom(src.smpte, 0.3, 0.4, 3.5),
    'zoom-cell': zoom(src.cell(30), 0.6, 0.6),
    'grow-disk-pal': grow(src.pal, 0.5, 0.5, [255, 220, 0]),
    'grow-square-testsrc2': grow(src.testsrc2, 0.4, 0.6, [0, 200, 255], 'square'),
    'grow-diamond-rgb': grow(src.rgb, 0.6, 0.4, [255, 255, 255], 'diamond'),
    'grow-disk-life': grow(src.life(3, '#00ff00'), 0.3, 0.3, [255, 0, 128]),
    'fill-left-smptehd': fill(src.smptehd, 'left', [40, 40, 200]),
    'fill-bottom-testsrc2': fill(src.testsrc2, 'bottom', [0, 120, 255]),
    'fill-top-cell': fill(src.cell(110), 'top', [220, 60, 0]),
    'fill-diagonal-pal': fill(src.pal, 'diagonal', [250, 250, 250]),
    'fadeto-testsrc2': fadeTo(src.testsrc2, 'white'),
    'fadeto-smpte': fadeTo(src.smpte, 'black'),
    'fadeto-mandel': fadeTo(src.mandel(-0.1011, 0.9563, 0.3), '#2040c0'),
    'fadeto-cell': fadeTo(src.cell(110), '#e0e020'),
    'grow-diamond-smptehd': grow(src.smptehd, 0.5, 0.6, [200, 0, 200], 'diamond'),
  },
  test: {
    'zoom-pal': zoom(src.pal, 0.5, 0.5),
    'zoom-life': zoom(src.life(11, '#ffff00'), 0.4, 0.5, 3),
    'grow-disk-smpte': grow(src.smpte, 0.5, 0.5, [255, 120, 0]),
    'grow-square-cell': grow(src.cell(90), 0.5, 0.4, [0, 255, 120], 'square'),
    'grow-disk-testsrc2': grow(src.testsrc2, 0.7, 0.6, [255, 255, 255]),
    'fill-left-rgb': fill(src.rgb, 'left', [0, 180, 60]),
    'fill-bottom-smptehd': fill(src.smptehd, 'bottom', [30, 200, 220]),
    'fadeto-pal': fadeTo(src.pal, '#808080'),
    'fadeto-life': fadeTo(src.life(5, '#ff8000'), '#c02020'),
    'fadeto-rgb': fadeTo(src.rgb, 'white'),
  },
};

function arrowJobs(dir, scenes) {
  const jobs = [];
  for (const [name, graph] of Object.entries(scenes)) {
    const frames = `trim=end_frame=${AFRAMES},setpts=N/(${AFPS}*TB)`;
    jobs.push(() => lavfi(`${graph},${frames},format=yuv420p`, join(dir, 'forward', `${name}.mp4`)));
    jobs.push(() =>
      lavfi(
        `${graph},${frames},reverse,setpts=N/(${AFPS}*TB),format=yuv420p`,
        join(dir, 'reversed', `${name}.mp4`),
      ),
    );
  }
  return jobs;
}

function csv(rows) {
  return `path,label\n${rows.map(([p, l]) => `${p},${l}`).join('\n')}\n`;
}

function arrowManifest(scenes) {
  return csv(
    Object.keys(scenes).flatMap((name) => [
      [`forward/${name}.mp4`, 'forward'],
      [`reversed/${name}.mp4`, 'reversed'],
    ]),
  );
}

// ---------------------------------------------------------------------------------------
// Segments: videos made of 3-4 visually distinct pieces, each with a label, for
// many-to-many tagging. 10 fps, so every boundary falls on a frame (frame k is at k/10 s).

const SW = 160;
const SH = 120;
const SFPS = 10;
export const SEGMENT_LABELS = ['bars', 'fractal', 'noise'];

function segmentSource(label, variant, frames) {
  const s = `s=${SW}x${SH}:r=${SFPS}`;
  const body = {
    bars: [`smptebars=${s}`, `smptehdbars=${s}`, `pal75bars=${s}`, `rgbtestsrc=${s}`][variant % 4],
    fractal: [
      `mandelbrot=${s}:maxiter=160:start_x=-0.743643887037158:start_y=0.131825904205311:start_scale=0.2:end_scale=0.05:end_pts=100`,
      `mandelbrot=${s}:maxiter=160:start_x=-1.25066:start_y=0.02012:start_scale=0.3:end_scale=0.1:end_pts=100`,
      `mandelbrot=${s}:maxiter=160:start_x=-0.1011:start_y=0.9563:start_scale=0.5:end_scale=0.2:end_pts=100`,
      `mandelbrot=${s}:maxiter=160:start_x=-0.75:start_y=0.1:start_scale=0.4:end_scale=0.1:end_pts=100`,
    ][variant % 4],
    noise: [
      `color=c=#305080:${s},noise=alls=60:allf=t+u:all_seed=${11 + variant}`,
      `color=c=#806030:${s},noise=alls=80:allf=t:all_seed=${21 + variant}`,
      `color=c=#408040:${s},noise=alls=50:allf=t+u:all_seed=${31 + variant}`,
      `color=c=#707070:${s},noise=alls=90:allf=t+u:all_seed=${41 + variant}`,
    ][variant % 4],
  }[label];
  return `${body},trim=end_frame=${frames},setpts=N/(${SFPS}*TB),format=yuv420p,setsar=1`;
}

export function segmentLayouts() {
  const rand = seedrandom('20261129'); // seeded, so the segment layout never changes
  const videos = [];
  for (let v = 0; v < 12; v++) {
    const count = 3 + Math.floor(rand() * 2); // 3 or 4 segments
    const segments = [];
    let at = 0;
    let previous = -1;
    for (let k = 0; k < count; k++) {
      let label;
      do label = Math.floor(rand() * SEGMENT_LABELS.length);
      while (label === previous);
      previous = label;
      const frames = 8 + Math.floor(rand() * 13); // 0.8 .. 2.0 s
      segments.push({
        label: SEGMENT_LABELS[label],
        variant: Math.floor(rand() * 4),
        startFrame: at,
        frames,
      });
      at += frames;
    }
    videos.push({ name: `seg-${String(v).padStart(2, '0')}.mp4`, segments, split: v < 8 ? 'train' : 'test' });
  }
  return videos;
}

function segmentJobs(dir) {
  return segmentLayouts().map((video) => () => {
    const graph = video.segments
      .map((s, i) => `${segmentSource(s.label, s.variant, s.frames)}[s${i}]`)
      .join(';');
    const concat = `${video.segments.map((_, i) => `[s${i}]`).join('')}concat=n=${video.segments.length}:v=1:a=0`;
    return lavfi(`${graph};${concat}`, join(dir, video.name));
  });
}

function segmentManifest(split) {
  return segmentLayouts()
    .filter((v) => v.split === split)
    .map((v) =>
      JSON.stringify({
        path: v.name,
        segments: v.segments.map((s) => ({
          start: s.startFrame / SFPS,
          end: (s.startFrame + s.frames) / SFPS,
          label: s.label,
        })),
      }),
    )
    .join('\n')
    .concat('\n');
}

// ---------------------------------------------------------------------------------------
// Edge cases.

/**
 * Frame n shows n in binary as 8 horizontal bands (band b, from the top, is bit b; white =
 * 1), so a decoded, cropped, resized frame still says which source frame it is.
 * `decodeCounter()` in test/fixtures.ts reads it back.
 */
const counterGraph = (w, h, fps, seconds) =>
  `color=c=black:s=${w}x${h}:r=${fps}:d=${seconds},format=yuv444p,geq=lum='if(mod(floor(N/pow(2,floor(Y*8/H))),2),235,16)':cb=128:cr=128`;
export const COUNTER = { width: 160, height: 120, fps: 24, seconds: 10, bits: 8 };
export const VFR = { fps: 30, seconds: 3 };

async function edgeJobs(dir) {
  const e = (name) => join(dir, name);
  mkdirSync(dir, { recursive: true });
  const jobs = [
    // counter.ts: the same frames in MPEG-TS, whose timeline starts at about 1.4 s.
    async () => {
      await lavfi(
        counterGraph(COUNTER.width, COUNTER.height, COUNTER.fps, COUNTER.seconds),
        e('counter.mp4'),
      );
      await ffmpeg([
        '-i',
        e('counter.mp4'),
        '-c',
        'copy',
        '-bsf:v',
        'h264_mp4toannexb',
        '-fflags',
        '+bitexact',
        '-f',
        'mpegts',
        e('counter.ts'),
      ]);
    },
    // Variable frame rate: a 30 fps counter, every 3rd frame in [0,1) s, every frame in
    // [1,2) s, every 6th frame after; kept frames keep their timestamps (n/30).
    () =>
      lavfi(
        `${counterGraph(160, 120, VFR.fps, VFR.seconds)},select='lt(t\\,1)*not(mod(n\\,3))+between(t\\,1\\,1.99)+gte(t\\,2)*not(mod(n\\,6))'`,
        e('vfr.mp4'),
        ['-vsync', 'vfr'],
      ),
    // Odd size: 4:2:0 needs even sizes, so 4:4:4.
    () =>
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'testsrc2=s=321x179:r=10:d=1,format=yuv444p',
        ...X264.slice(0, -2),
        '-pix_fmt',
        'yuv444p',
        ...BITEXACT,
        e('odd-321x179.mp4'),
      ]),
    () => lavfi('testsrc2=s=160x120:r=10', e('one-frame.mp4'), ['-frames:v', '1']),
    () =>
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:duration=1',
        '-c:a',
        'aac',
        '-b:a',
        '64k',
        ...BITEXACT,
        e('audio-only.mp4'),
      ]),
    () => lavfi('testsrc2=s=160x120:r=10:d=2', e('path with spaces ünïcødé.mp4')),
    // Video with an audio track, to check hasAudio.
    () =>
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'testsrc2=s=160x120:r=10:d=2',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:duration=2',
        ...X264,
        '-c:a',
        'aac',
        '-b:a',
        '64k',
        '-shortest',
        ...BITEXACT,
        e('with-audio.mp4'),
      ]),
    // Rotated: coded 320x240, left half red and right half blue. This muxer (ffmpeg 4.1)
    // stores `rotate=270` as a display matrix that players, ffmpeg included, apply as a
    // 90 degree clockwise turn, so it displays as 240x320 with red on top. Tests read the
    // rotation from probe() rather than trusting this comment.
    async () => {
      await lavfi(
        'color=red:s=160x240:r=10:d=1[a];color=blue:s=160x240:r=10:d=1[b];[a][b]hstack',
        e('.rotated-base.mp4'),
      );
      await ffmpeg([
        '-i',
        e('.rotated-base.mp4'),
        '-c',
        'copy',
        '-metadata:s:v:0',
        'rotate=270',
        ...BITEXACT,
        e('rotated.mp4'),
      ]);
      rmSync(e('.rotated-base.mp4'));
    },
    // Truncated: a 4 s counter with its index (moov) first, cut to 55% of its bytes, so the
    // header survives and decoding stops part-way. truncated-nomoov.mp4 keeps only the
    // first 60% of a file whose index is at the end: no header at all.
    async () => {
      await lavfi(counterGraph(160, 120, 24, 4), e('.full.mp4'));
      const full = readFileSync(e('.full.mp4'));
      writeFileSync(e('truncated.mp4'), full.subarray(0, Math.floor(full.length * 0.55)));
      await ffmpeg([
        '-f',
        'lavfi',
        '-i',
        counterGraph(160, 120, 24, 4),
        ...X264,
        '-fflags',
        '+bitexact',
        '-flags:v',
        '+bitexact',
        e('.tail-index.mp4'),
      ]);
      const tail = readFileSync(e('.tail-index.mp4'));
      writeFileSync(e('truncated-nomoov.mp4'), tail.subarray(0, Math.floor(tail.length * 0.6)));
      rmSync(e('.full.mp4'));
      rmSync(e('.tail-index.mp4'));
    },
    // Unsupported: a valid MP4 whose sample entry says 'qqv1', a codec nobody knows.
    async () => {
      await lavfi('testsrc2=s=160x120:r=10:d=1', e('.unsupported-base.mp4'));
      const bytes = readFileSync(e('.unsupported-base.mp4'));
      for (let i = bytes.indexOf('avc1'); i >= 0; i = bytes.indexOf('avc1', i + 4)) bytes.write('qqv1', i);
      writeFileSync(e('unsupported.mp4'), bytes);
      rmSync(e('.unsupported-base.mp4'));
    },
  ];
  writeFileSync(e('zero-byte.mp4'), '');
  writeFileSync(e('text.mp4'), 'This is a text file, not a video.\nIt only has a video extension.\n');
  return jobs;
}

// ---------------------------------------------------------------------------------------
// samples/: three held-out arrow scenes, forward and reversed, plus labels.csv. Small and
// committed, so the README's first command works on a fresh clone.

export const SAMPLE_SCENES = ['grow-disk-smpte', 'fill-left-rgb', 'zoom-pal'];

async function makeSamples(dir) {
  const scenes = Object.fromEntries(SAMPLE_SCENES.map((name) => [name, ARROW_SCENES.test[name]]));
  await runAll(arrowJobs(dir, scenes));
  writeFileSync(join(dir, 'labels.csv'), arrowManifest(scenes));
}

/**
 * The three-class training set of issue 32, a new user's first dataset: 24 short videos (8 a
 * class: bars, fractal, noise; 160x120, 10 fps, 2-6 s), folder per class. Textures this
 * distinct are learnt in a couple of epochs, after which the validation loss only creeps: the
 * case early stopping must end with its defaults. Made on demand (not part of the fixture
 * set): `makeThreeClassSet(dir)`; a `.complete` stamp marks a finished set.
 */
export async function makeThreeClassSet(dir) {
  if (existsSync(join(dir, '.complete'))) return dir;
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const jobs = [];
  for (const label of SEGMENT_LABELS) {
    for (let k = 0; k < 8; k++) {
      const frames = 20 + ((k * 7 + label.length * 3) % 41); // 2.0 .. 6.0 s
      // Variants 0-3, and for the second four an offset in time, so no two videos are the same.
      const source = segmentSource(label, k, frames + (k >= 4 ? 15 : 0)).replace(
        /,trim=end_frame=\d+/,
        `,trim=start_frame=${k >= 4 ? 15 : 0}:end_frame=${frames + (k >= 4 ? 15 : 0)}`,
      );
      jobs.push(() => lavfi(source, join(tmp, label, `${label}-${k}.mp4`)));
    }
  }
  await runAll(jobs);
  writeFileSync(join(tmp, '.complete'), '1\n');
  try {
    renameSync(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, '.complete'))) throw error;
  }
  return dir;
}

async function buildFixtures(dir) {
  await runAll([
    ...arrowJobs(join(dir, 'arrow'), ARROW_SCENES.train),
    ...arrowJobs(join(dir, 'arrow'), ARROW_SCENES.test),
    ...segmentJobs(join(dir, 'segments')),
    ...(await edgeJobs(join(dir, 'edge'))),
  ]);
  writeFileSync(join(dir, 'arrow', 'train.csv'), arrowManifest(ARROW_SCENES.train));
  writeFileSync(join(dir, 'arrow', 'test.csv'), arrowManifest(ARROW_SCENES.test));
  writeFileSync(join(dir, 'segments', 'train.jsonl'), segmentManifest('train'));
  writeFileSync(join(dir, 'segments', 'test.jsonl'), segmentManifest('test'));
  writeFileSync(
    join(dir, 'README.md'),
    `framewise test fixtures, made by scripts/make-samples.mjs (version ${FIXTURES_VERSION}). Safe to delete.\n`,
  );
}

export function defaultFixturesDir() {
  return process.env.FRAMEWISE_FIXTURES || join(tmpdir(), 'framewise-fixtures-v1');
}

function isCurrent(dir) {
  try {
    return readFileSync(join(dir, '.complete'), 'utf8').trim() === FIXTURES_VERSION;
  } catch {
    return false;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Builds the fixture set into `dir` unless a current one is there. Safe to call concurrently. */
export async function ensureFixtures(dir, { force = false } = {}) {
  dir = resolve(dir);
  if (!force && isCurrent(dir)) return { dir, built: false };
  mkdirSync(dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      let pid = 0;
      try {
        pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        // The holder has not written its pid yet.
      }
      const age = Date.now() - statSync(lock, { throwIfNoEntry: false })?.mtimeMs;
      if ((pid && !alive(pid)) || (!pid && age > 30_000)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline)
        throw new Error(`Timed out waiting for ${lock}; delete it if no make-samples is running`);
      else await sleep(300);
    }
  }
  try {
    if (!force && isCurrent(dir)) return { dir, built: false };
    const work = `${dir}.partial-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    await buildFixtures(work);
    writeFileSync(join(work, '.complete'), `${FIXTURES_VERSION}\n`);
    if (existsSync(dir)) {
      // The replaced set is kept until the next rebuild: a test run still reading it (by
      // path) keeps working. Older replaced sets go now.
      for (const name of readdirSync(dirname(dir))) {
        if (name.startsWith(`${basename(dir)}.old-`))
          rmSync(join(dirname(dir), name), { recursive: true, force: true });
      }
      renameSync(dir, `${dir}.old-${process.pid}`);
      renameSync(work, dir);
    } else {
      renameSync(work, dir);
    }
    return { dir, built: true };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function main(argv) {
  const has = (flag) => argv.includes(flag);
  const three = argv.indexOf('--three-class');
  if (three >= 0) {
    await makeThreeClassSet(resolve(argv[three + 1]));
    return;
  }
  const at = argv.indexOf('--fixtures-dir');
  const fixturesDir = at >= 0 ? argv[at + 1] : defaultFixturesDir();
  if (!has('--fixtures-only')) {
    const to = argv.indexOf('--samples-dir');
    const samples = to >= 0 ? resolve(argv[to + 1]) : join(ROOT, 'samples');
    const t0 = Date.now();
    await makeSamples(samples);
    process.stderr.write(`make-samples: samples/ written in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  if (!has('--samples-only')) {
    const t0 = Date.now();
    const { dir, built } = await ensureFixtures(fixturesDir, { force: has('--force') });
    process.stderr.write(
      built
        ? `make-samples: fixtures built in ${dir} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`
        : `make-samples: fixtures up to date in ${dir}\n`,
    );
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`make-samples: ${error.stack ?? error}\n`);
    process.exit(1);
  });
}
