/**
 * The output formats, one registry: `OUTPUT_FORMATS` is the one list; `--format`'s checks
 * and help, and the writer each command opens, come from it. Adding a format is its file in
 * formats/ plus its line here.
 *
 * This file is light (the CLI reads it for `--help`): a writer loads the sinks and records
 * only when it opens.
 */
import { UsageError } from '../errors.js';
import { Registry, type NameOf } from '../registry.js';
import type {
  OutputCommand,
  OutputFormatEntry,
  ResultsOf,
  ResultWriter,
  WriterOpenOptions,
} from './formats/entry.js';
import { csv } from './formats/csv.js';
import { jsonl } from './formats/jsonl.js';
import { npy } from './formats/npy.js';
import { srt } from './formats/srt.js';
import { vtt } from './formats/vtt.js';

export type { OutputCommand, RecordOptions, ResultWriter, WriterOpenOptions } from './formats/entry.js';

/** The formats; a command's first is its default. */
export const OUTPUT_FORMATS = new Registry('output format', {
  jsonl,
  csv,
  npy,
  vtt,
  srt,
} satisfies Record<string, OutputFormatEntry>);

export type OutputFormatName = NameOf<typeof OUTPUT_FORMATS>;

/** The formats `command` writes, its default first. */
export function formatsOf(command: OutputCommand): OutputFormatName[] {
  return OUTPUT_FORMATS.entries()
    .filter(([, entry]) => entry.writers[command])
    .map(([name]) => name);
}

/** `--format`'s help for `command`: the formats it writes, with what each is. */
export function formatsHelp(command: OutputCommand): string {
  return OUTPUT_FORMATS.help(formatsOf(command));
}

/**
 * The format a run writes: `requested` (`--format`), else the one whose extension `out` ends
 * in, else the command's default. A format the command does not write, or a folder format
 * for stdout, is a UsageError.
 */
export function chooseFormat(command: OutputCommand, out: string, requested?: string): OutputFormatName {
  const names = formatsOf(command);
  const list = names.map((n) => `'${n}'`).join(', ');
  if (requested !== undefined && !names.includes(requested as OutputFormatName)) {
    throw new UsageError(`Expected one of ${list} for \`--format\` but received '${requested}'`);
  }
  const byExtension = OUTPUT_FORMATS.entries().find(
    ([, entry]) => entry.extension && out.toLowerCase().endsWith(entry.extension),
  )?.[0];
  if (requested === undefined && byExtension && !names.includes(byExtension)) {
    throw new UsageError(
      `\`--out ${out}\` names a ${byExtension} file, which ${command} does not write; it writes ${list} (\`--format\`)`,
    );
  }
  const name = (requested as OutputFormatName | undefined) ?? byExtension ?? names[0];
  if (OUTPUT_FORMATS.get(name).folder && out === '-')
    throw new UsageError(`\`--format ${name}\` writes a folder; \`--out -\` is not possible`);
  return name;
}

/** Opens `out` as `format` for `command`'s results (every check first; the file opens with the first record). */
export async function openWriter<C extends OutputCommand>(
  command: C,
  format: OutputFormatName,
  out: string,
  options: WriterOpenOptions,
): Promise<ResultWriter<ResultsOf[C]>> {
  const open = OUTPUT_FORMATS.get(format, 'format').writers[command];
  if (!open) throw new UsageError(`${command} does not write ${format}`);
  return open(out, options);
}
