#!/usr/bin/env node
/**
 * The framewise command line. Each command lives in its own file and only parses
 * arguments, calls the library and prints. Heavy modules (tfjs) are imported lazily
 * inside the commands, so `--help` is instant.
 *
 * Exit codes:
 *   0    every input succeeded
 *   1    some inputs failed; their error records were written
 *   2    usage or configuration error; nothing was written
 *   3    the output could not be written (disk full, read-only); the records written are whole: --resume completes
 *   130  interrupted (SIGINT)
 *   141  the reader of stdout went away (`| head`): stop quietly, as Unix tools do
 */
// First: a Ctrl-C during the start-up exits 130 at once (until a command handles it).
import './early-signals.js';
import { cac, type Command } from 'cac';
import { FRAMEWISE_VERSION } from '../version.js';
import { commands } from './commands.js';
import { OutputError, UsageError } from '../errors.js';
import { stdoutClosed, stdoutWasClosed, stoppedCode } from './interrupt.js';
import { didYouMean, EXIT_OUTPUT, exitCodeFor, printError } from './util.js';

const version = FRAMEWISE_VERSION;

/**
 * `--epochs -1` as `--epochs=-1`, so that the parser hands the value to the option's own
 * range check instead of reading `-1` as an unknown option. Stops at `--`.
 */
export function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--') return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    if (/^--[^=]+$/.test(word) && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${word}=${next}`);
      i += 1;
    } else {
      out.push(word);
    }
  }
  return out;
}

/** The words a command's flags are written as (`--out`, `--no-cache`, `-h`), for those that take a value or for all. */
function flagWords(command: Command, valued: boolean): string[] {
  const options = [...command.cli.globalCommand.options, ...command.options].filter(
    (o) => !valued || !o.isBoolean,
  );
  return options.flatMap((o) => o.rawName.split(',').map((name) => name.trim().split(/[\s<[]/)[0]));
}

/**
 * An empty value (`--out ""`, `--cache=`) is a usage error naming the flag: the argument
 * parser reads `''` as the number 0, so `--out "$OUT"` with OUT unset would write `./0`.
 */
export function checkEmptyValues(argv: readonly string[], command: Command): void {
  const valued = new Set(flagWords(command, true));
  const end = argv.indexOf('--');
  for (const [i, word] of (end >= 0 ? argv.slice(0, end) : argv).entries()) {
    const flag = word.split('=', 1)[0];
    if (!valued.has(flag)) continue;
    if (word === `${flag}=` || (word === flag && argv[i + 1] === ''))
      throw new UsageError(`\`${flag}\` was given an empty value`);
  }
}

/** The option key the argument parser files a flag word under (`--top-k5` as `topK5`, `--no-cache` as `cache`). */
function optionKey(word: string): string {
  return word
    .replace(/^--?(no-)?/, '')
    .split('=', 1)[0]
    .split('.', 1)[0]
    .replace(/([a-z])-([a-z])/g, (_, a: string, b: string) => a + b.toUpperCase());
}

/**
 * A flag the command does not take is a usage error that quotes it as typed (the parser's own
 * check names its camelCase key, `--topK5`) and suggests the nearest flag by edit distance.
 */
export function checkUnknownFlags(argv: readonly string[], command: Command): void {
  const known = (key: string): boolean =>
    Boolean(command.hasOption(key) || command.cli.globalCommand.hasOption(key));
  const end = argv.indexOf('--');
  for (const word of end >= 0 ? argv.slice(0, end) : argv) {
    if (!/^-[^-\d.]|^--[^-]/.test(word)) continue;
    // `-hv` is -h and -v.
    const keys = word.startsWith('--') ? [optionKey(word)] : [...word.slice(1).split('=', 1)[0]];
    if (keys.every(known)) continue;
    const typed = word.split('=', 1)[0];
    throw new UsageError(
      `Unknown option \`${typed}\`${typed.startsWith('--') ? didYouMean(typed, flagWords(command, false)) : ''}`,
    );
  }
}

const EXIT_CODES = [
  '  0    every input succeeded',
  '  1    some inputs failed; their error records were written',
  '  2    usage or configuration error; nothing was written',
  '  3    the output could not be written (disk full, read-only); --resume completes it later',
  '  130  interrupted (Ctrl-C)',
  '  141  stdout was closed early by its reader (as with | head)',
];

/** The commands whose exit codes are not the batch commands' (the list above). */
const COMMAND_EXIT_CODES: Readonly<Record<string, readonly string[]>> = {
  compare: ['  0    the reports were compared', EXIT_CODES[2], EXIT_CODES[5]],
  worker: [
    '  1    Redis was unreachable past --redis-timeout (the jobs in hand go back to the queue)',
    '  2    usage or configuration error',
    '  130  stopped by Ctrl-C or SIGTERM, after the jobs in hand',
  ],
};

export async function main(argv: string[]): Promise<number> {
  const cli = cac('framewise');
  for (const register of commands) register(cli);
  cli.help((sections) => [
    // cac gives a `--no-x` flag the default `true` (of `x`), which reads backwards after "Do not ...".
    ...sections.map((s) => ({ ...s, body: s.body.replace(/^(\s+--no-\S+.*?) \(default: true\)$/gm, '$1') })),
    {
      title: 'Exit codes',
      body: (COMMAND_EXIT_CODES[cli.matchedCommand?.name ?? ''] ?? EXIT_CODES).join('\n'),
    },
  ]);
  cli.version(version);
  try {
    cli.parse(['node', 'framewise', ...joinNegativeValues(argv)], { run: false });
    if (cli.options.help || cli.options.version) return 0;
    // After `--` every word is an input, even one that starts with `-` (`embed -- -rf.mp4`).
    const rest = (cli.options['--'] as string[] | undefined) ?? [];
    if (rest.length > 0) cli.args = [...cli.args, ...rest];
    if (!cli.matchedCommand) {
      // An unknown command: one line, with the nearest command or the list of them, and exit 2.
      if (cli.args.length > 0) {
        const names = cli.commands.map((c) => c.name).filter(Boolean);
        const word = String(cli.args[0]);
        const hint = didYouMean(word, names) || `; the commands are ${names.join(', ')}`;
        process.stderr.write(
          `framewise: unknown command \`${word}\`${hint}\nRun \`framewise --help\` for the usage.\n`,
        );
        return 2;
      }
      // No command: the usage, on stderr, and exit 2.
      process.stderr.write('framewise: a command is needed\n');
      const log = console.log;
      console.log = console.error; // cac prints help with console.log
      try {
        cli.outputHelp();
      } finally {
        console.log = log;
      }
      return 2;
    }
    checkUnknownFlags(argv, cli.matchedCommand);
    checkEmptyValues(argv, cli.matchedCommand);
    const code = await cli.runMatchedCommand();
    return typeof code === 'number' ? code : 0;
  } catch (error) {
    if (stdoutWasClosed()) return 141; // its write's EPIPE: the reader went away, stop quietly
    printError(error, cli);
    return exitCodeFor(error);
  }
}

// A reader that stops early closes the pipe; without a listener the EPIPE would crash with
// a stack. The run then stops as on Ctrl-C and exits 141 (interrupt.ts); the exit hook kills
// any ffmpeg children.
// Any other failure of stdout (`> /dev/full`: ENOSPC) is an output error: one line, exit 3.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') return stdoutClosed();
  const failure = OutputError.from('stdout', error);
  if (!failure) throw error;
  printError(failure);
  process.exit(EXIT_OUTPUT);
});

const code = await main(process.argv.slice(2));
process.exitCode = code === 130 ? stoppedCode() : code;
// An interrupted run has written what finished and closed its decoders and workers; work that
// cannot be cut short (a backbone still being built) is not waited for.
if (code === 130) process.exit();
