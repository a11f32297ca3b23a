#!/usr/bin/env node
/**
 * `npm run bench:decode`: the decoders (`cli`, `libav`) and seek modes (`exact`, `keyframe`)
 * against each other on decoding alone: the plans `framewise embed` makes (16 uniform frames
 * at 224, fit cover), decoded and resized, never embedded.
 *
 *   node scripts/bench-decode.mjs [--rounds 3] [--videos DIR] [--long-minutes 30]
 *
 * 1. The benchmark set (scripts/make_bench_videos.sh: 10 s, 30 fps H.264 clips) and one
 *    long 640x360 video (`--long-minutes`, made once beside it).
 * 2. Each configuration runs as its own process under GNU time, rounds alternated
 *    (A B C ... A B C ...): CPU-s (user + sys, ffmpeg children included) and wall per clip,
 *    after subtracting a process that loads the same modules and decodes nothing. libav
 *    also counts packets fed, fed with skip_frame=noref, and frames decoded.
 * 3. `framewise embed` on the set as a whole process, `--decoder libav` and `cli` alternated.
 * 4. The long video: 16 frames, timed inside one process after a warm-up (so start-up
 *    cancels out), per decoder and seek mode, one decode at a time.
 *
 * Absolute numbers drift on a shared machine; compare within one run. Hold the CPU lock
 * (`flock /tmp/framewise-cpu.lock npm run bench:decode`) where others share the machine.
 */
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  cliArgs,
  cpuInfo,
  ensureLongVideo,
  ensureVideos,
  fmt,
  median,
  run,
  videoList,
} from './bench-lib.mjs';

const root = path.resolve(import.meta.dirname, '..');
const SELF = path.join(root, 'scripts', 'bench-decode.mjs');

if (process.argv[2] === '--child') {
  await child(process.argv.slice(3));
  process.exit(0);
}

const { value, positive } = cliArgs();
const rounds = positive('rounds', 3);
const videos = path.resolve(value('videos', path.join(os.tmpdir(), 'framewise-bench-videos')));
const longMinutes = positive('long-minutes', 30);
ensureVideos(videos);
const long = ensureLongVideo(path.dirname(videos), longMinutes);
const files = videoList(videos).map((f) => path.join(videos, f));

/** name → [decoder, seek, threads, concurrency]. `none` loads the modules and decodes nothing. */
const CONFIGS = {
  none: ['none', 'exact', 1, 1],
  'cli exact, ffmpeg threads': ['cli', 'exact', 0, 1],
  'cli exact, 1 thread': ['cli', 'exact', 1, 1],
  'libav exact, 1 thread': ['libav', 'exact', 1, 1],
  'libav exact, 2 threads': ['libav', 'exact', 2, 1],
  'libav exact, 2 decodes x 1 thread': ['libav', 'exact', 1, 2],
  'cli exact, 2 decodes x ffmpeg threads': ['cli', 'exact', 0, 2],
  'cli keyframe': ['cli', 'keyframe', 0, 1],
  'libav keyframe': ['libav', 'keyframe', 1, 1],
};

const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
console.log(
  `bench:decode on ${cpuInfo().model}, ${os.availableParallelism()} cores; ${files.length} videos x 16 frames; ${rounds} rounds; load at start ${load()}`,
);
const results = Object.fromEntries(Object.keys(CONFIGS).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, [decoder, seek, threads, concurrency]] of Object.entries(CONFIGS)) {
    const r = await run(process.execPath, [
      SELF,
      '--child',
      'set',
      decoder,
      seek,
      String(threads),
      String(concurrency),
      ...files,
    ]);
    if (r.code !== 0) throw new Error(`${name}: exited with ${r.signal ?? r.code}\n${r.stderr.slice(-2000)}`);
    results[name].push({ ...JSON.parse(r.stdout.trim().split('\n').pop()), cpu: r.cpu, wall: r.wall });
  }
  console.log(`round ${round + 1} done; load ${load()}`);
}

const base = { cpu: median(results.none.map((r) => r.cpu)), wall: median(results.none.map((r) => r.wall)) };
console.log(
  `\nper clip (16 frames), start-up (${fmt(base.cpu)} CPU-s, ${fmt(base.wall)} s wall) subtracted; medians of ${rounds} rounds`,
);
console.log(
  '| configuration | CPU-s / clip | wall s / clip | packets fed + noref / read | frames decoded / clip |',
);
console.log('|---|---|---|---|---|');
const rows = {};
for (const name of Object.keys(CONFIGS)) {
  if (name === 'none') continue;
  const rs = results[name];
  const cpu = (median(rs.map((r) => r.cpu)) - base.cpu) / files.length;
  const wall = (median(rs.map((r) => r.wall)) - base.wall) / files.length;
  const s = rs[0].stats;
  const fed = s
    ? `${fmt((s.packetsFed + s.packetsNoref) / files.length, 0)} (${fmt(s.packetsNoref / files.length, 0)} noref) / ${fmt(s.packetsRead / files.length, 0)}`
    : 'all to the last frame';
  const decoded = s ? fmt(s.framesDecoded / files.length, 0) : 'n/a';
  rows[name] = { cpu, wall };
  console.log(`| ${name} | ${fmt(cpu, 3)} | ${fmt(wall, 3)} | ${fed} | ${decoded} |`);
}
const ratio = (a, b) => fmt(rows[a].cpu / rows[b].cpu, 2);
console.log(
  `\nlibav (1 thread) CPU / cli (ffmpeg threads) CPU: ${ratio('libav exact, 1 thread', 'cli exact, ffmpeg threads')}x; / cli (1 thread): ${ratio('libav exact, 1 thread', 'cli exact, 1 thread')}x`,
);
console.log(
  `libav 2 threads / 1 thread, CPU: ${ratio('libav exact, 2 threads', 'libav exact, 1 thread')}x, wall: ${fmt(rows['libav exact, 2 threads'].wall / rows['libav exact, 1 thread'].wall, 2)}x`,
);
console.log(
  `libav 2 decodes x 1 thread, wall / 1 decode x 2 threads: ${fmt(rows['libav exact, 2 decodes x 1 thread'].wall / rows['libav exact, 2 threads'].wall, 2)}x`,
);

// The whole `framewise embed` process on the set, each decoder, alternated: CPU and wall.
const CLI = path.join(root, 'dist', 'cli', 'main.js');
const embed = { libav: [], cli: [] };
for (let round = 0; round < rounds; round++) {
  for (const decoder of ['libav', 'cli']) {
    const r = await run(process.execPath, [
      CLI,
      'embed',
      videos,
      '--no-cache',
      '--quiet',
      '--decoder',
      decoder,
      '--out',
      path.join(os.tmpdir(), `framewise-bench-decode-${process.pid}.jsonl`),
      '--force',
    ]);
    if (r.code !== 0)
      throw new Error(
        `embed --decoder ${decoder}: exited with ${r.signal ?? r.code}\n${r.stderr.slice(-2000)}`,
      );
    embed[decoder].push({ cpu: r.cpu, wall: r.wall });
  }
}
const m = (rs, k) => median(rs.map((r) => r[k]));
console.log(
  `\nframewise embed on the set (whole process, defaults, --no-cache), medians of ${rounds} alternated rounds, load ${load()}:`,
);
console.log(
  `  --decoder libav: ${fmt(m(embed.libav, 'cpu'))} CPU-s, ${fmt(m(embed.libav, 'wall'))} s wall; --decoder cli: ${fmt(m(embed.cli, 'cpu'))} CPU-s, ${fmt(m(embed.cli, 'wall'))} s wall`,
);
console.log(
  `  libav / cli: CPU ${fmt(m(embed.libav, 'cpu') / m(embed.cli, 'cpu'))}x, wall ${fmt(m(embed.libav, 'wall') / m(embed.cli, 'wall'))}x`,
);

console.log(
  `\nthe ${longMinutes}-minute video (${(statSync(long).size / 2 ** 20).toFixed(0)} MiB), 16 uniform frames, per video in a warm process (median of 3), load ${load()}:`,
);
for (const [decoder, seek] of [
  ['cli', 'exact'],
  ['libav', 'exact'],
  ['cli', 'keyframe'],
  ['libav', 'keyframe'],
]) {
  const r = await run(process.execPath, [SELF, '--child', 'long', decoder, seek, '0', '1', long]);
  if (r.code !== 0)
    throw new Error(`long ${decoder} ${seek}: exited with ${r.signal ?? r.code}\n${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  console.log(
    `  ${decoder} ${seek}: ${fmt(out.perVideo, 3)} s wall, ${fmt(out.cpuPerVideo, 3)} CPU-s${out.stats ? `; fed ${out.stats.packetsFed} + ${out.stats.packetsNoref} noref of ${out.stats.packetsRead} read, ${out.stats.framesDecoded} frames decoded, ${out.stats.seeks} seeks` : ''}`,
  );
}
console.log(`load at end ${load()}`);

/** The child: `set` decodes the files (16 frames each) at `concurrency`; `long` times one file, warm. */
async function child([kind, decoder, seek, threadsArg, concurrencyArg, ...paths]) {
  const { extractClips, parseSampling, planClips, probe } = await import(
    path.join(root, 'dist', 'ingest', 'index.js')
  );
  const { createDecoder } = await import(path.join(root, 'dist', 'ingest', 'decoders.js'));
  const { onDecodeStats } = await import(path.join(root, 'dist', 'ingest', 'decoders', 'libav', 'index.js'));
  await createDecoder('auto'); // loads node-av in every configuration, `none` included
  const threads = Number(threadsArg);
  const concurrency = Number(concurrencyArg);
  const sampling = parseSampling('uniform', 16);
  let stats;
  onDecodeStats((_, s) => {
    stats ??= {
      packetsRead: 0,
      packetsFed: 0,
      packetsNoref: 0,
      framesDecoded: 0,
      framesConverted: 0,
      seeks: 0,
    };
    for (const k of Object.keys(stats)) stats[k] += s[k];
  });
  const one = async (file) => {
    const info = await probe(file, { decoder });
    const clips = await extractClips(file, planClips(info, sampling), {
      decoder,
      seek,
      threads,
      probe: info,
      size: 224,
    });
    return clips[0].timestamps.length;
  };
  if (kind === 'set') {
    let frames = 0;
    if (decoder !== 'none') {
      const queue = [...paths];
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (queue.length > 0) frames += await one(queue.shift());
        }),
      );
    }
    console.log(JSON.stringify({ videos: paths.length, frames, stats }));
    return;
  }
  await one(paths[0]); // warm-up
  stats = undefined;
  const walls = [];
  const cpus = [];
  // CPU of this process and of its reaped children (ffmpeg), from /proc (clock ticks of 10 ms).
  const { readFileSync } = await import('node:fs');
  const ticks = () => {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) / 100;
  };
  for (let i = 0; i < 3; i++) {
    const c0 = ticks();
    const t0 = performance.now();
    await one(paths[0]);
    walls.push((performance.now() - t0) / 1000);
    cpus.push(ticks() - c0);
  }
  if (stats) for (const k of Object.keys(stats)) stats[k] = Math.round(stats[k] / 3);
  console.log(JSON.stringify({ perVideo: median(walls), cpuPerVideo: median(cpus), stats }));
}
