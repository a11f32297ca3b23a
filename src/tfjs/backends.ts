/**
 * The tfjs backends, declared once; each value is its help text. Light (no tfjs), so the run
 * options and the CLI read it without loading tfjs; `backend.ts` chooses among them.
 */
export const BACKENDS = {
  tensorflow: 'tfjs-node, native: optional, main thread only',
  wasm: 'WebAssembly with SIMD',
  cpu: 'plain JavaScript',
} as const;

export type BackendName = keyof typeof BACKENDS;
/** The backend asked for: `auto` takes tfjs-node, then wasm, then cpu. */
export type BackendRequest = 'auto' | BackendName;
export const BACKEND_REQUESTS = ['auto', ...Object.keys(BACKENDS)] as readonly BackendRequest[];
