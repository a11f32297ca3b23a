/**
 * What the benchmark scripts share: medians and formatting, timing a child process (wall,
 * CPU with children, peak RSS), the benchmark videos, and the machine's peak.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);

/** `--name value` flags of a bench script: `value(name, fallback)`, `positive(name, fallback)`, `flag(name)`. */
export function cliArgs(argv = process.argv.slice(2)) {
  const value = (name, fallback) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
  };
  const positive = (name, fallback) => {
    const n = Number(value(name, fallback));
    if (!Number.isInteger(n) || n < 1)
      throw new TypeError(`Expected a positive integer for \`--${name}\` but received ${value(name)}`);
    return n;
  };
  return { value, positive, flag: (name) => argv.includes(`--${name}`) };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
export const mib = (kb) => (kb ? `${Math.round(kb / 1024)} MiB` : 'n/a');

/** RSS in kB of a process and of its whole tree (Linux /proc; undefined elsewhere). */
function treeRss(rootPid) {
  let entries;
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  const children = new Map();
  const rss = new Map();
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      const pages = Number(fields[21]);
      rss.set(Number(pid), (pages * 4096) / 1024);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(pid));
    } catch {
      // The process ended while we looked.
    }
  }
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  let hwm;
  try {
    hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${rootPid}/status`, 'utf8'))[1]);
  } catch {
    hwm = undefined;
  }
  return { total, hwm };
}

/**
 * Runs a command; resolves with wall seconds, stdout, stderr, exit code, the peak RSS of the
 * process itself (VmHWM, threads included) and of its tree (sampled, ffmpeg children included).
 * `onLine` sees stdout lines as they come, with the seconds since start; `threads: true` adds `threads`, the CPU
 * seconds per thread group (see threadSampler).
 */
const GNU_TIME =
  existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-f', '%U', 'true']).status === 0
    ? '/usr/bin/time'
    : undefined;

/**
 * CPU seconds per thread of a process tree, sampled from /proc/<pid>/task/<tid>/stat (Linux;
 * empty elsewhere). Each thread keeps its last reading, so a thread that ended still counts.
 * `summary()` groups them: each process's main thread (tid = pid) as `<comm> main`, the
 * others by their name (`libuv-worker`, `V8 DefaultWorke`, onnxruntime's, worker threads...).
 */
export function threadSampler(rootPid) {
  const last = new Map(); // `${pid}/${tid}` -> { name, seconds }
  const HZ = 100; // USER_HZ: /proc's clock ticks on Linux
  const children = () => {
    const byParent = new Map();
    let entries = [];
    try {
      entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return byParent;
    }
    for (const pid of entries) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (!byParent.has(ppid)) byParent.set(ppid, []);
        byParent.get(ppid).push(Number(pid));
      } catch {
        // ended while we looked
      }
    }
    return byParent;
  };
  const sample = () => {
    const byParent = children();
    const stack = [rootPid];
    while (stack.length) {
      const pid = stack.pop();
      stack.push(...(byParent.get(pid) ?? []));
      let tids = [];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      for (const tid of tids) {
        try {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          const seconds = (Number(f[11]) + Number(f[12])) / HZ; // utime + stime
          last.set(`${pid}/${tid}`, { name: String(tid) === String(pid) ? `${name} main` : name, seconds });
        } catch {
          // ended while we looked
        }
      }
    }
  };
  return {
    sample,
    summary() {
      const groups = new Map();
      for (const { name, seconds } of last.values()) {
        const g = groups.get(name) ?? { seconds: 0, threads: 0 };
        g.seconds += seconds;
        g.threads += 1;
        groups.set(name, g);
      }
      return [...groups.entries()].sort((a, b) => b[1].seconds - a[1].seconds);
    },
  };
}

export function run(command, args, { env, onLine, threads } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // CPU seconds (user + sys, children included) through GNU time where there is one: on a
    // shared machine they drift far less than wall-clock time.
    const timeFile = GNU_TIME
      ? path.join(os.tmpdir(), `framewise-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`)
      : undefined;
    const [cmd, cmdArgs] = timeFile
      ? [GNU_TIME, ['-f', '%U %S %M', '-o', timeFile, command, ...args]]
      : [command, args];
    const child = spawn(cmd, cmdArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    let peakTree = 0;
    let peakSelf = 0;
    const perThread = threads ? threadSampler(child.pid) : undefined;
    const sample = () => {
      perThread?.sample();
      const r = treeRss(child.pid);
      if (r) {
        peakTree = Math.max(peakTree, r.total);
        if (r.hwm && !timeFile) peakSelf = Math.max(peakSelf, r.hwm);
      }
    };
    const timer = setInterval(sample, 100);
    child.stdout.on('data', (chunk) => {
      const text = chunk.toString();
      stdout += text;
      if (onLine) {
        pending += text;
        for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
          onLine(pending.slice(0, i), (performance.now() - started) / 1000);
          pending = pending.slice(i + 1);
        }
      }
    });
    child.stderr.on('data', (chunk) => (stderr += chunk.toString()));
    child.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      let cpu;
      if (timeFile) {
        try {
          const [user, sys, maxKb] = readFileSync(timeFile, 'utf8')
            .trim()
            .split('\n')
            .pop()
            .split(' ')
            .map(Number);
          cpu = user + sys;
          peakSelf = maxKb; // the largest single process: node with its worker threads
        } catch {
          // time wrote nothing (killed): no CPU figure
        }
        rmSync(timeFile, { force: true });
      }
      resolve({
        wall: (performance.now() - started) / 1000,
        stdout,
        stderr,
        code,
        signal,
        peakTree,
        peakSelf,
        cpu,
        threads: perThread?.summary(),
      });
    });
  });
}

export function ffmpegPath() {
  return process.env.FFMPEG_PATH || require('@ffmpeg-installer/ffmpeg').path;
}

/** A `minutes`-long 640x360, 30 fps H.264 video (testsrc2) in `dir`, made once: its path. */
export function ensureLongVideo(dir, minutes) {
  const long = path.join(dir, `framewise-bench-long-${minutes}min.mp4`);
  if (existsSync(long)) return long;
  console.log(`making the ${minutes}-minute video ${long} (once)...`);
  const partial = `${long}.${process.pid}.partial.mp4`;
  const made = spawnSync(
    ffmpegPath(),
    ['-y', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=s=640x360:r=30:d=${minutes * 60}`].concat([
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-crf',
      '23',
      '-pix_fmt',
      'yuv420p',
      '-an',
      partial,
    ]),
    { stdio: 'inherit' },
  );
  if (made.status !== 0) throw new Error('making the long video failed');
  renameSync(partial, long);
  return long;
}

/** Makes the benchmark videos in `videos` once (scripts/make_bench_videos.sh). */
export function ensureVideos(videos) {
  const stamp = path.join(videos, '.complete');
  if (existsSync(stamp)) return;
  const tmp = `${videos}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.dirname(videos), { recursive: true });
  console.log(`making the benchmark videos in ${videos} (a few minutes, once)...`);
  const made = spawnSync('bash', [path.join(root, 'scripts', 'make_bench_videos.sh'), tmp, ffmpegPath()], {
    stdio: 'inherit',
  });
  if (made.status !== 0) throw new Error(`make_bench_videos.sh failed (${made.signal ?? made.status})`);
  writeFileSync(path.join(tmp, '.complete'), new Date().toISOString());
  rmSync(videos, { recursive: true, force: true });
  renameSync(tmp, videos);
}

/** `dir`: every video of `videos` twice (hard links, else copies), made once. */
export function ensureDoubled(videos, dir) {
  const names = videoList(videos);
  if (existsSync(dir) && videoList(dir).length === 2 * names.length) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const name of names) {
    for (const copy of ['a', 'b']) {
      const [from, to] = [path.join(videos, name), path.join(dir, `${copy}_${name}`)];
      try {
        linkSync(from, to);
      } catch {
        copyFileSync(from, to);
      }
    }
  }
}

export const videoList = (videos) =>
  readdirSync(videos)
    .filter((f) => /\.(mp4|mkv|webm|mov|avi|m4v)$/i.test(f))
    .sort();

export function cpuInfo() {
  const text = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /model name\s*:\s*(.*)/.exec(text)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(text)?.[1] ?? os.cpus()[0]?.speed ?? 0);
  const flags = /flags\s*:\s*(.*)/.exec(text)?.[1]?.split(' ') ?? [];
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  // fp32 flops per cycle per core: two FMA ports, 2 flops per lane per FMA.
  const perCycle = flags.includes('avx512f') ? 64 : flags.includes('avx2') && flags.includes('fma') ? 32 : 16;
  return {
    model,
    ghz: mhz / 1000,
    cores,
    perCycle,
    isa: perCycle === 64 ? 'AVX-512 FMA' : perCycle === 32 ? 'AVX2 FMA' : 'SSE',
  };
}
