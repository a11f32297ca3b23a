/**
 * The one registry type behind every extension point: samplers and decoders (ingest), engines
 * and tfjs backends, heads (model), output formats (output), runners. A registry is a table
 * owned by its folder; what every table needs is written here once: the names in order, a
 * checked lookup whose usage error lists them, the help line of a flag, the default (the
 * first entry), and `auto`, the first that loads, with one form of message for what was
 * refused. (After open-mmlab/mmengine's `Registry`.)
 */
import { debug } from './log.js';
import { invalid } from './validate.js';

/** What every entry has: a line of help for `--help` and the docs. */
export interface RegistryEntry {
  readonly help: string;
}

/** How `firstThatLoads` goes through the entries. */
export interface FirstThatLoadsOptions<N extends string> {
  /** The entries to try, in order. @default every entry, in the table's order */
  names?: readonly N[];
  /** An error that is the answer rather than a refusal (a stopped run, a wrong option): it ends the search. @default none */
  fatal?: (error: unknown) => boolean;
  /** The error when every entry was refused, given the refusals. @default the last entry's own error */
  none?: (refused: string) => Error;
}

/** A named table of entries of one kind; its first entry is the default. */
export class Registry<T extends Record<string, E>, E extends RegistryEntry = T[keyof T]> {
  private readonly table = new Map<string, E>();

  /** `kind` names an entry in messages (`sampler`, `engine`). */
  constructor(
    readonly kind: string,
    entries: T,
  ) {
    for (const [name, entry] of Object.entries(entries)) this.register(name, entry);
  }

  /** Adds an entry at the end (a plug-in, or a test); a name taken already is a bug. */
  register(name: string, entry: E): this {
    if (this.table.has(name)) throw new Error(`A ${this.kind} named '${name}' is registered already`);
    this.table.set(name, entry);
    return this;
  }

  /** Removes an entry registered with `register`; true when it was there. */
  unregister(name: string): boolean {
    return this.table.delete(name);
  }

  has(name: unknown): name is keyof T & string {
    return typeof name === 'string' && this.table.has(name);
  }

  /** The names, in order, as they are now. */
  names(): Array<keyof T & string> {
    return [...this.table.keys()] as Array<keyof T & string>;
  }

  /** `auto` and the names: what a request may be for a table whose `auto` is the first that loads. */
  requests(): Array<'auto' | (keyof T & string)> {
    return ['auto', ...this.names()];
  }

  entries(): Array<[keyof T & string, E]> {
    return [...this.table.entries()] as Array<[keyof T & string, E]>;
  }

  /** The first entry's name. */
  get default(): keyof T & string {
    return this.names()[0];
  }

  /**
   * The name `value` asks for: one of the names (and `auto` with `{ auto: true }`), else a
   * usage error (a TypeError with code `USAGE`) naming `field` and listing them.
   */
  check(field: string, value: unknown): keyof T & string;
  check(field: string, value: unknown, options: { auto: true }): 'auto' | (keyof T & string);
  check(field: string, value: unknown, options: { auto?: boolean } = {}): string {
    const choices: string[] = options.auto ? this.requests() : this.names();
    if (typeof value === 'string' && choices.includes(value)) return value;
    throw invalid(field, `one of ${choices.map((c) => `'${c}'`).join(', ')}`, value);
  }

  /** The entry named `name`; a usage error naming `field` and listing the names when there is none. */
  get<N extends keyof T & string>(name: N, field?: string): T[N];
  get(name: string, field?: string): E;
  get(name: string, field = this.kind): E {
    return this.table.get(this.check(field, name))!;
  }

  /** `a (what a does) | b (...)`, for a flag's description: every entry, or those named. */
  help(names: readonly string[] = this.names()): string {
    return names.map((name) => `${name} (${this.get(name).help})`).join(' | ');
  }

  /**
   * `auto`: gives each entry in turn to `open`, and returns what the first one that opens
   * gives. A refusal is said in one form, `<name> was refused (<why>)`, where `why` is the
   * error's `reason` or the first line of its message; `open` receives the refusals before it
   * (undefined for the first), so its result can say why it runs.
   */
  async firstThatLoads<R>(
    open: (name: keyof T & string, entry: E, refused: string | undefined) => Promise<R>,
    options: FirstThatLoadsOptions<keyof T & string> = {},
  ): Promise<R> {
    const names = options.names ?? this.names();
    const refused: string[] = [];
    for (const [i, name] of names.entries()) {
      try {
        return await open(name, this.get(name), refused.length > 0 ? refused.join('; ') : undefined);
      } catch (error) {
        if (options.fatal?.(error) || (!options.none && i === names.length - 1)) throw error;
        const why =
          (error as { reason?: string }).reason ?? (error as Error).message?.split('\n')[0] ?? String(error);
        refused.push(`${name} was refused (${why})`);
        debug('%s auto: %s', this.kind, refused.at(-1));
      }
    }
    throw options.none ? options.none(refused.join('; ')) : new Error(`No ${this.kind} is registered`);
  }
}

/** The names of a registry, as a type. */
export type NameOf<R> = R extends Registry<infer T, RegistryEntry> ? keyof T & string : never;
/** The entries of a registry, by name, as a type. */
export type TableOf<R> = R extends Registry<infer T, RegistryEntry> ? T : never;
