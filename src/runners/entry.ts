/** What a runner is, for the registry in `registry.ts`. */
import type { EmbedRunner } from '../embedding/runner.js';
import type { ResolvedOptions } from '../embedding/options.js';

export interface RunnerEntry {
  /** What it is, for the docs. */
  readonly help: string;
  /**
   * Whether the options ask for it (`remote` asks for the remote runner). The first entry of
   * `RUNNERS` is the default and needs none: it runs whatever no other runner takes.
   */
  takes?(options: ResolvedOptions): boolean;
  /** Builds the runner (and looks up or loads the backbone). */
  open(options: ResolvedOptions, signal: AbortSignal | undefined): Promise<EmbedRunner>;
}
