/**
 * A decode worker (see decode-pool.ts): decodes one video at a time with the decoder named,
 * as the main thread would, and sends the clips back with their frames transferred. The
 * task loop, abort and close are the thread pool's (thread-pool.ts `serveTasks`).
 *
 * FFmpeg's log callback is one per process, and node-av ties the one it sets to the thread
 * that set it: once that thread has ended, the next thread to set or log through it aborts
 * the process (seen: SIGINT while the workers were starting). loadLibav() sets it in every
 * thread that loads node-av, so a worker hands it back at once: it resets it, and the main
 * thread, told by a `log` note, sets its own again (decode-pool.ts). FFmpeg's messages
 * then all reach the main thread's debuglog.
 */
import { noteToPool, serveTasks } from '../thread-pool.js';
import { createDecoder, type DecoderName, type VideoDecoder } from './decoders.js';
import { LOG_NOTE, type DecodeTask } from './decode-pool.js';
import { loadLibav } from './decoders/libav/av.js';
import type { FrameClip } from './types.js';

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
    noteToPool(LOG_NOTE);
  },
  () => undefined, // the decoder asked for says why when it opens
);

serveTasks<DecodeTask, FrameClip[]>(async (task, signal) => {
  await started;
  if (!decoders.has(task.decoder)) decoders.set(task.decoder, createDecoder(task.decoder));
  const decoder = await decoders.get(task.decoder)!;
  const { probe, ...options } = task.options;
  // The metadata comes with the task: the open reads nothing.
  const video = await decoder.open(task.path, { signal, timeoutMs: options.timeoutMs ?? 30_000, probe });
  try {
    const clips = await video.decode(task.plans, { ...options, signal });
    return { result: clips, transfer: transferable(clips) };
  } finally {
    await video.close();
  }
});
