/**
 * The tfjs backend of the heads. Heads train and predict in this thread, whatever engine
 * runs the backbone (in workers, on ONNX Runtime, or not at all when every embedding came
 * from the cache), so the tasks choose and report it here.
 */
import { currentBackend, selectBackend, type BackendInfo, type BackendRequest } from '../tfjs/backend.js';

/** Selects the heads' backend (`auto`: tfjs-node, then wasm, then cpu). */
export function selectHeadBackend(
  request: BackendRequest,
  options: { signal?: AbortSignal } = {},
): Promise<BackendInfo> {
  return selectBackend(request, options);
}

/** The backend the heads run on, once selected. */
export function headBackend(): BackendInfo | undefined {
  return currentBackend();
}
