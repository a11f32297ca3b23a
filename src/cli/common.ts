/**
 * What the backbone-running commands (`embed`, `train`, `classify`, `eval`) share: the
 * common flags, turning parsed flags into library options, and the run/exit protocol.
 */
import type { CAC, Command } from 'cac';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError, UsageError } from '../errors.js';
import {
  BACKENDS,
  checkQueueName,
  checkRedisCa,
  checkRedisUrl,
  DECODERS,
  ENGINES,
  FITS,
  samplingForms,
  type PipelineOptions,
  type RemoteSettings,
} from '../tasks/options.js';

/** Flags every backbone-running command accepts. */
export function backboneFlags(command: Command): Command {
  return command
    .option(
      '--backbone <name>',
      "Backbone: mobilenet_v2, inception_v3, a model.onnx or tfjs model.json path or URL (default: mobilenet_v2, or the model's)",
    )
    .option(
      '--normalize <n>',
      'With a --backbone path: 0..1 | -1..1 | imagenet (default for .onnx: imagenet)',
    )
    .option(
      '--engine <engine>',
      `Backbone engine: auto (the first that loads) | ${ENGINES.help()} (default: auto)`,
    )
    .option(
      '--backend <backend>',
      `tfjs backend: auto (the first that loads) | ${BACKENDS.help()} (default: auto)`,
    )
    .option('--concurrency <n>', 'Decodes at once (default: 2; worker: the old spelling of --jobs)')
    .option('--threads <n>', "decoding threads per decode (default: 0: ffmpeg's choice for cli, 1 for libav)")
    .option('--decoder <d>', `auto (the first that loads) | ${DECODERS.help()} (default: auto)`)
    .option(
      '--seek <mode>',
      'exact (the frame on display at each time) | keyframe (the nearest keyframe, decoding keyframes only) (default: exact)',
    )
    .option(
      '--batch <n>',
      'Clips per backbone call (default: 4; train: not the training batch, see --batch-size)',
    )
    .option(
      '--workers <n>',
      'tfjs backbone worker threads, 0 for none (default: by cores; the onnx engine sizes its own threads)',
    )
    .option('--cache [dir]', 'Embedding cache folder (default: $FRAMEWISE_CACHE or ~/.cache/framewise)')
    .option('--no-cache', 'Do not read or write the embedding cache')
    .option(
      '--timeout <seconds>',
      'Per-video decode timeout in seconds (default: 60 + 2 per second of video, at most a day)',
    )
    .option(
      '--redis <url>',
      'Across machines: the Redis whose queue `framewise worker`s take the work from (redis://host:6379[/db])',
    )
    .option('--queue <name>', 'With --redis: the queue name (default: framewise)')
    .option(
      '--redis-timeout <seconds>',
      'With --redis: how long to wait for an unreachable Redis before failing (default: 60)',
    )
    .option(
      '--redis-ca <file>',
      "With a rediss:// URL: the PEM file of the CA that signed the server certificate (default: Node's CAs)",
    )
    .option(
      '--strict-redis',
      'With --redis: refuse a Redis whose maxmemory-policy is not noeviction (default: a warning)',
    )
    .option(
      '--metrics-port <port>',
      'With --redis: serve Prometheus metrics on http://0.0.0.0:PORT/metrics while the command runs',
    )
    .option('--quiet', 'No progress on stderr');
}

/** Flags that choose frames. */
export function samplingFlags(command: Command, defaults: 'explicit' | 'model'): Command {
  const from = defaults === 'model' ? " (default: the model's)" : '';
  return command
    .option('--frames <n>', `Frames per clip${defaults === 'model' ? from : ' (default: 16)'}`)
    .option('--size <px>', `Frame size; must match the backbone${from || " (default: the backbone's, 224)"}`)
    .option('--sampling <s>', `${samplingForms()}${from || ' (default: uniform)'}`)
    .option('--fit <fit>', `${choicesHelp(FITS)} (default: cover)`);
}

/** `cover (what it does) | contain (...)`: a closed list of values with their help (the registries have `help()`). */
function choicesHelp(table: Readonly<Record<string, string>>): string {
  return Object.entries(table)
    .map(([name, help]) => `${name} (${help})`)
    .join(' | ');
}

export type Flags = Record<string, unknown>;

/**
 * The word a flag was given as on the command line. The argument parser turns any word that
 * JavaScript reads as a number into one (`0x10` is 16, `1e2` is 100), so the checks below read
 * the word itself.
 */
function flagWord(name: string, value: unknown): unknown {
  if (typeof value !== 'number') return value;
  const flag = `--${kebab(name)}`;
  const end = process.argv.indexOf('--');
  const argv = end >= 0 ? process.argv.slice(0, end) : process.argv;
  for (let i = argv.length - 1; i >= 0; i--) {
    if (argv[i] === flag && i + 1 < argv.length) return argv[i + 1];
    if (argv[i].startsWith(`${flag}=`)) return argv[i].slice(flag.length + 1);
  }
  return String(value);
}

/** An integer flag, written in decimal digits; a UsageError naming the flag otherwise. */
export function intFlag(flags: Flags, name: string, min = 1): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  const word = flagWord(name, value);
  const n = typeof word === 'string' && /^\d+$/.test(word) ? Number(word) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `Expected ${min === 0 ? 'a non-negative' : 'a positive'} integer for \`--${kebab(name)}\` but received ${JSON.stringify(word)}`,
    );
  }
  return n;
}

export function stringFlag(flags: Flags, name: string): string | undefined {
  let value = flags[name];
  // The argument parser reads a lone `-` after an option as no value; `--out -` means stdout.
  if (value === true) {
    const i = process.argv.indexOf(`--${kebab(name)}`);
    if (i >= 0 && process.argv[i + 1] === '-') value = '-';
  }
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new UsageError(`\`--${kebab(name)}\` was given more than once`);
  if (value === true || value === '') throw new UsageError(`\`--${kebab(name)}\` needs a value`);
  return String(value);
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

const atLeast =
  (min: number) =>
  (flags: Flags, name: string): number | undefined =>
    intFlag(flags, name, min);

/** The common flags that are a pipeline option of the same name, and how each is read (the options' own checks follow in `resolveOptions`). */
const PIPELINE_FLAGS: ReadonlyArray<
  [keyof PipelineOptions, (flags: Flags, name: string) => string | number | undefined]
> = [
  ['backbone', stringFlag],
  ['normalize', stringFlag],
  ['engine', stringFlag],
  ['backend', stringFlag],
  ['decoder', stringFlag],
  ['seek', stringFlag],
  ['sampling', stringFlag],
  ['fit', stringFlag],
  ['concurrency', atLeast(1)],
  ['threads', atLeast(0)],
  ['batch', atLeast(1)],
  ['workers', atLeast(0)],
  ['frames', atLeast(1)],
  ['size', atLeast(1)],
];

/** Library pipeline options from the common flags (undefined where a flag is absent). */
export function pipelineOptionsFrom(flags: Flags): PipelineOptions {
  const options: Record<string, unknown> = {};
  for (const [name, read] of PIPELINE_FLAGS) {
    const value = read(flags, name);
    if (value !== undefined) options[name] = value;
  }
  if (flags.cache === false) options.cache = false;
  else if (typeof flags.cache === 'string' || typeof flags.cache === 'number')
    options.cache = String(flags.cache);
  const timeoutMs = millisecondsFlag(flags, 'timeout');
  if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
  const remote = remoteFlags(flags);
  if (remote) options.remote = remote;
  return options as PipelineOptions;
}

/** A flag in seconds, as milliseconds; a UsageError naming the flag unless it is a positive number. */
export function millisecondsFlag(flags: Flags, name: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  const word = flagWord(name, value);
  const seconds = typeof word === 'string' && /^(\d+(\.\d*)?|\.\d+)$/.test(word) ? Number(word) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(
      `Expected a positive number of seconds for \`--${kebab(name)}\` but received ${JSON.stringify(word)}`,
    );
  }
  return Math.round(seconds * 1000);
}

/** A repeatable flag's words, in order (none: an empty list); a flag given without a value is a UsageError. */
export function listFlag(flags: Flags, name: string): string[] {
  const value = flags[name];
  if (value === undefined) return [];
  const words = Array.isArray(value) ? value : [value];
  if (words.some((w) => typeof w === 'boolean')) throw new UsageError(`\`--${kebab(name)}\` needs a value`);
  return words.map(String);
}

/** A flag in seconds (0 allowed); a UsageError naming the flag unless it is a non-negative number. */
export function secondsFlag(flags: Flags, name: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  const word = flagWord(name, value);
  const seconds = typeof word === 'string' && /^(\d+(\.\d*)?|\.\d+)$/.test(word) ? Number(word) : NaN;
  if (!Number.isFinite(seconds))
    throw new UsageError(
      `Expected a number of seconds >= 0 for \`--${kebab(name)}\` but received ${JSON.stringify(word)}`,
    );
  return seconds;
}

/** A probability flag in [0, 1]; a UsageError naming the flag otherwise. */
export function probabilityFlag(flags: Flags, name: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  const word = flagWord(name, value);
  const p = typeof word === 'string' && /^(\d+(\.\d*)?|\.\d+)$/.test(word) ? Number(word) : NaN;
  if (!(p >= 0 && p <= 1))
    throw new UsageError(
      `Expected a probability >= 0 and <= 1 for \`--${kebab(name)}\` but received ${JSON.stringify(word)}`,
    );
  return p;
}

/** `--redis`, `--queue`, `--redis-timeout`: where a run across machines sends its work. */
export function remoteFlags(flags: Flags): RemoteSettings | undefined {
  const redis = stringFlag(flags, 'redis');
  const queue = stringFlag(flags, 'queue');
  const timeoutMs = millisecondsFlag(flags, 'redisTimeout');
  const redisCa = stringFlag(flags, 'redisCa');
  const strictRedis = flags.strictRedis === true ? true : undefined;
  if (!redis) {
    const given = Object.entries({
      queue,
      'redis-timeout': timeoutMs,
      'redis-ca': redisCa,
      'strict-redis': strictRedis,
      'metrics-port': flags.metricsPort,
    }).find(([, v]) => v !== undefined);
    if (given) throw new UsageError(`\`--${given[0]}\` needs \`--redis <url>\``);
    return undefined;
  }
  const url = checkRedisUrl('--redis', redis);
  return {
    redis: url,
    ...(queue !== undefined ? { queue: checkQueueName('--queue', queue) } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(redisCa !== undefined ? { redisCa: checkRedisCa('--redis-ca', redisCa, url) } : {}),
    ...(strictRedis ? { strictRedis } : {}),
  };
}

/** `--model`: required, and a folder that holds a `framewise.json`. */
export async function modelDirFlag(flags: Flags): Promise<string> {
  const modelDir = stringFlag(flags, 'model');
  if (!modelDir) throw new UsageError('`--model` is required: a model folder made by `framewise train`');
  try {
    await access(join(modelDir, 'framewise.json'));
  } catch {
    throw new ModelError(
      `No model in ${modelDir}: framewise.json is missing (make one with \`framewise train\`)`,
    );
  }
  return modelDir;
}

/** `<inputs...>` as strings (cac may hand numbers for numeric names). */
export function inputList(inputs: unknown): string[] {
  const list = (Array.isArray(inputs) ? inputs : [inputs]).filter((x) => x !== undefined).map(String);
  if (list.length === 0) throw new UsageError('No inputs: give files, folders or manifests');
  return list;
}

/** True for the error an aborted signal rejects with. */
export function isAbort(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR')
  );
}

export type { CAC };

/** A flag whose value is one of `choices`; a UsageError naming the flag and the choices otherwise. */
export function choiceFlag<T extends string>(
  flags: Flags,
  name: string,
  flag: string,
  choices: readonly T[],
): T | undefined {
  const value = stringFlag(flags, name);
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(
      `Expected one of ${choices.map((c) => `'${c}'`).join(', ')} for \`--${flag}\` but received ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}
