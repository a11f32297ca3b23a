/**
 * What an engine is, for the registry in `index.ts`. An entry is light: it imports its engine
 * only in `create`, so reading the registry (the run options, the CLI's help) loads none.
 */
import type { BackboneSpec } from '../embedding/backbone-spec.js';
import type { FrameEmbedder } from '../embedding/frame-embedder.js';
import type { BackendRequest } from '../tfjs/backends.js';

/** The settings `createFrameEmbedder()` has checked, as every engine receives them. */
export interface EngineSettings {
  backbone: BackboneSpec;
  cacheDir: string | undefined;
  /** The tfjs backend (tfjs engine). */
  backend: BackendRequest;
  /** tfjs backbone worker threads (tfjs engine). */
  workers: number | undefined;
  /** ONNX Runtime intra-op threads (onnx engine). */
  intraOpThreads: number | undefined;
  /** Told when the backbone must first be prepared (converted: seconds, once). */
  onPrepare: ((message: string) => void) | undefined;
  signal: AbortSignal | undefined;
}

/** How this engine came to run, for its `backend.reason`. */
export interface EngineChoice {
  /** What was asked for: an engine's name, or `auto`. */
  request: string;
  /** Under `auto`, why the engines before it did not run (`onnx was refused (...)`). */
  because?: string;
}

export interface EngineEntry {
  /** What it is, for `--help` and the docs. */
  readonly help: string;
  /** Whether it can run this backbone at all; under `auto` it is skipped when not. */
  runs(backbone: BackboneSpec): boolean;
  /**
   * For a backbone that only this engine runs, what it is (`an .onnx backbone`): any other
   * engine asked for by name is then a conflict. Undefined for any other backbone.
   */
  only?(backbone: BackboneSpec): string | undefined;
  /** Loads the engine and the backbone on it. */
  create(settings: EngineSettings, choice: EngineChoice): Promise<FrameEmbedder>;
}
