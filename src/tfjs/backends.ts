/**
 * The tfjs backends, one registry: each entry is its help text and its factory, which makes
 * the backend tfjs's current one. Light (no tfjs: a factory imports `backend-load.ts` when it
 * runs), so the run options and the CLI read it without loading tfjs; `backend.ts` chooses
 * among them, and `auto` takes the first that loads, in this order.
 */
import { Registry, type NameOf, type RegistryEntry } from '../registry.js';

export interface BackendEntry extends RegistryEntry {
  /** Makes this backend current; gives what loaded (for the reason), or rejects with why it cannot run here. */
  load(): Promise<string>;
  /** What to do when it was asked for by name and did not load. @default none */
  readonly remedy?: string;
}

const tensorflow: BackendEntry = {
  help: 'tfjs-node, native: optional, main thread only',
  load: async () => (await import('./backend-load.js')).loadTensorflow(),
  remedy:
    "Install it with `npm install @tensorflow/tfjs-node` (it downloads libtensorflow), or use backend 'auto', 'wasm' or 'cpu'.",
};
const wasm: BackendEntry = {
  help: 'WebAssembly with SIMD',
  load: async () => (await import('./backend-load.js')).loadWasm(),
};
const cpu: BackendEntry = {
  help: 'plain JavaScript',
  load: async () => (await import('./backend-load.js')).loadCpu(),
};

/** The backends, in the order `auto` tries them. */
export const BACKENDS = new Registry('backend', { tensorflow, wasm, cpu });

export type BackendName = NameOf<typeof BACKENDS>;
/** The backend asked for: `auto` takes tfjs-node, then wasm, then cpu. */
export type BackendRequest = 'auto' | BackendName;
