/** What an output format is, for the registry in `../formats.ts`. */
import type { ErrorRecord } from '../../embedding/runner.js';
import type { ClassifyResult } from '../../tasks/classify.js';
import type { EmbedResult } from '../../tasks/embed.js';
import type { OutputOpenOptions, ResumeState } from '../sinks.js';
import type { HeadMode } from '../../model/model-info.js';

/** The results each writing command gives. */
export interface ResultsOf {
  embed: EmbedResult;
  classify: ClassifyResult;
}
export type OutputCommand = keyof ResultsOf;

/** What shapes a record beyond the result itself. */
export interface RecordOptions {
  /** embed: also each frame's embedding. */
  frameEmbeddings?: boolean;
  /** classify: the model's labels (needed by `probs`). */
  labels?: readonly string[];
  /** classify: every label's video-level probability. */
  probs?: boolean;
}

/** An open output that takes one command's results, one per video, in order. */
export interface ResultWriter<R> {
  /** What an output being resumed already holds. */
  readonly resume: ResumeState;
  write(result: R | ErrorRecord, options?: RecordOptions): Promise<void>;
  /** Closes the output and gives back its lock. */
  close(): Promise<void>;
}

/** What a writer is opened with: the output's checks, and what the run knows before its first result. */
export interface WriterOpenOptions extends OutputOpenOptions {
  /** classify: the model's mode; a frame model's CSV has a row per segment, and only a frame model has a timeline (vtt, srt). @default 'clip' */
  mode?: HeadMode;
  /** How many videos the run has, when known: an output that holds one video (`--out x.vtt`) refuses more. */
  videos?: number;
}

export type OpenWriter<R> = (out: string, options: WriterOpenOptions) => Promise<ResultWriter<R>>;

export interface OutputFormatEntry {
  /** What it writes, for `--help`. */
  readonly help: string;
  /** `--out` names a folder (so never stdout). */
  readonly folder?: boolean;
  /** An `--out` ending in this picks the format when `--format` is not given. */
  readonly extension?: string;
  /** The commands that write this format, and how (each loads its modules when it opens). */
  readonly writers: { readonly [C in OutputCommand]?: OpenWriter<ResultsOf[C]> };
}
