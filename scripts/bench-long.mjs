#!/usr/bin/env node
/**
 * `npm run bench:long`: one long video on every core (issue 33). A long 640x360 video
 * (`--minutes`, made once in the tmpdir), 16 uniform exact frames at 224, decoded one video
 * at a time in one warm process (start-up cancels out), the configurations alternated for
 * `--rounds` rounds:
 *
 * - `cli`: one ffmpeg process per video;
 * - `libav`: on this thread (no decode workers);
 * - `libav, 1 worker`: in one decode worker, unchunked;
 * - `libav, N workers`: the video's frames cut into N chunks, one worker each (chunk-plan.ts).
 *
 *   node scripts/bench-long.mjs [--rounds 3] [--minutes 30] [--workers <cores>]
 *
 * The chunked clips are checked against the unchunked ones, byte for byte. Absolute numbers
 * drift on a shared machine; compare within one run.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliArgs, cpuInfo, ensureLongVideo, fmt, median } from './bench-lib.mjs';

const root = path.resolve(import.meta.dirname, '..');
const dist = (p) => path.join(root, 'dist', 'ingest', p);
const { positive } = cliArgs();
const rounds = positive('rounds', 3);
const minutes = positive('minutes', 30);
const workers = positive('workers', os.availableParallelism());
const long = ensureLongVideo(os.tmpdir(), minutes);

const { extractClips, parseSampling, planClips, probe } = await import(dist('index.js'));
const { createDecoder } = await import(dist('decoders.js'));
const { DecodePool, pooledDecoder } = await import(dist('decode-pool.js'));
const libav = await createDecoder('libav');
const pools = [new DecodePool({ workers: 1 }), new DecodePool({ workers })];
const CONFIGS = {
  cli: await createDecoder('cli'),
  libav,
  'libav, 1 worker': pooledDecoder(libav, pools[0]),
  [`libav, ${workers} workers (chunked)`]: pooledDecoder(libav, pools[1]),
};

const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
/** CPU-s of this process, its threads and its reaped children (ffmpeg), from /proc (ticks of 10 ms). */
const cpu = () => {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) / 100;
};
const info = await probe(long, { decoder: 'libav' });
const plans = planClips(info, parseSampling('uniform', 16));
const decode = (decoder) => extractClips(long, plans, { decoder, seek: 'exact', probe: info, size: 224 });

console.log(
  `bench:long on ${cpuInfo().model}, ${os.availableParallelism()} cores; ${minutes}-minute 640x360 video, 16 exact frames; ${rounds} rounds; load ${load()}`,
);
const clips = {};
for (const [name, decoder] of Object.entries(CONFIGS)) clips[name] = await decode(decoder); // warm-up
const [, reference] = Object.keys(CONFIGS);
for (const name of Object.keys(CONFIGS).slice(2)) {
  const same = clips[name].every((c, i) => Buffer.from(c.data).equals(Buffer.from(clips[reference][i].data)));
  if (!same) throw new Error(`${name}: the frames differ from ${reference}'s`);
}
const results = Object.fromEntries(Object.keys(CONFIGS).map((name) => [name, { wall: [], cpu: [] }]));
for (let round = 0; round < rounds; round++) {
  for (const [name, decoder] of Object.entries(CONFIGS)) {
    const c0 = cpu();
    const t0 = performance.now();
    await decode(decoder);
    results[name].wall.push((performance.now() - t0) / 1000);
    results[name].cpu.push(cpu() - c0);
  }
  console.log(`round ${round + 1} done; load ${load()}`);
}
const cliWall = median(results.cli.wall);
console.log(`\nper video, medians of ${rounds} alternated rounds; load at end ${load()}`);
console.log('| configuration | wall s | CPU-s | cli wall / this wall |');
console.log('|---|---|---|---|');
for (const [name, r] of Object.entries(results))
  console.log(
    `| ${name} | ${fmt(median(r.wall), 3)} | ${fmt(median(r.cpu), 2)} | ${fmt(cliWall / median(r.wall), 2)}x |`,
  );
await Promise.all(pools.map((p) => p.close()));
