/**
 * A decode worker (see decode-pool.ts): decodes one video at a time with the decoder named,
 * as the main thread would, and sends the clips back with their frames transferred.
 *
 * An abort message aborts the decode's own AbortController; the reply comes once the decode
 * has returned. A close message closes the port: the thread then ends by itself once its
 * in-flight native calls have returned (it is never terminated from outside).
 *
 * FFmpeg's log callback is one per process, and node-av ties the one it sets to the thread
 * that set it: once that thread has ended, the next thread to set or log through it aborts
 * the process (seen: SIGINT while the workers were starting). loadLibav() sets it in every
 * thread that loads node-av, so a worker hands it back at once: it resets it, and the main
 * thread, told by a `log` message, sets its own again (decode-pool.ts). FFmpeg's messages
 * then all reach the main thread's debuglog.
 */
import { parentPort } from 'node:worker_threads';
import { createDecoder, type DecoderName, type VideoDecoder } from './decoders.js';
import { loadLibav } from './decoders/libav/av.js';
import { serializeError, type FromDecodeWorker, type ToDecodeWorker } from './decode-pool.js';
import type { FrameClip } from './types.js';

const port = parentPort!;
const running = new Map<number, AbortController>();
/** The decoders of this thread, each resolved once (on its first video). */
const decoders = new Map<DecoderName, Promise<VideoDecoder>>();

/** The clips' buffers to move: each clip's own, whole ArrayBuffer; a shared or partial one is copied first. */
function transferable(clips: FrameClip[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const clip of clips) {
    let buffer = clip.data.buffer as ArrayBuffer;
    if (buffers.has(buffer) || clip.data.byteOffset !== 0 || clip.data.byteLength !== buffer.byteLength) {
      clip.data = clip.data.slice();
      buffer = clip.data.buffer as ArrayBuffer;
    }
    buffers.add(buffer);
  }
  return [...buffers];
}

/** node-av loaded here (when it loads), with FFmpeg's log callback given back to the main thread. */
const started = loadLibav().then(
  (av) => {
    av.Log.resetCallback();
    port.postMessage({ type: 'log' } satisfies FromDecodeWorker);
  },
  () => undefined, // the decoder asked for says why when it opens
);

async function decode(message: Extract<ToDecodeWorker, { type: 'decode' }>): Promise<void> {
  const controller = new AbortController();
  running.set(message.id, controller);
  try {
    await started;
    if (!decoders.has(message.decoder)) decoders.set(message.decoder, createDecoder(message.decoder));
    const decoder = await decoders.get(message.decoder)!;
    const { probe, ...options } = message.options;
    const signal = controller.signal;
    // The metadata comes with the message: the open reads nothing.
    const video = await decoder.open(message.path, { signal, timeoutMs: options.timeoutMs ?? 30_000, probe });
    let clips: FrameClip[];
    try {
      clips = await video.decode(message.plans, { ...options, signal });
    } finally {
      await video.close();
    }
    port.postMessage({ type: 'done', id: message.id, clips } satisfies FromDecodeWorker, transferable(clips));
  } catch (error) {
    port.postMessage({
      type: 'failed',
      id: message.id,
      error: serializeError(error),
    } satisfies FromDecodeWorker);
  } finally {
    running.delete(message.id);
  }
}

port.on('message', (message: ToDecodeWorker) => {
  if (message.type === 'decode') void decode(message);
  else if (message.type === 'abort')
    running.get(message.id)?.abort(new DOMException('The decode was aborted', 'AbortError'));
  else port.close();
});
