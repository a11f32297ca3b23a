/**
 * One long video on several decoders at once (issue 33, deliverable 2): the pure half. A
 * video's planned frames are cut by time into at most `parts` contiguous chunks of about
 * equal count, each decoded by its own decoder (a decode worker: decode-pool.ts) that opens
 * the file and seeks to its first frame's keyframe; `joinClips` puts the frames back into
 * the clips they came from, in order. A cut falls only where consecutive planned times lie
 * at least `minGap` apart: there the decoder would seek anyway, so a chunk costs no
 * reference frames that one decoder would not have decoded. In `exact` mode a frame is the
 * frame at its pts whichever decoder gives it, so the clips are the unchunked ones, byte for
 * byte (test/ingest/decode-pool.test.ts).
 *
 * No FFmpeg here: test/ingest/chunk-plan.test.ts checks it on plans written by hand.
 */
import { SEEK_MIN_GAP_S } from './extract-plan.js';
import type { ClipPlan, FrameClip } from './types.js';

/** One chunk: the part of each clip it decodes, and where those frames go back. */
export interface ClipChunk {
  /** Clip plans with a subset of their frames (those in this chunk's span), in the clips' order. */
  plans: ClipPlan[];
  /** Per plan above: its clip's position in the whole list, and its frames' positions in that clip. */
  from: Array<{ clip: number; frames: number[] }>;
}

/**
 * `plans` cut by time into at most `parts` chunks (see the module comment); one chunk, all of
 * `plans`, when there is nowhere to cut. Equal planned times always share a chunk.
 */
export function chunkClips(plans: readonly ClipPlan[], parts: number, minGap = SEEK_MIN_GAP_S): ClipChunk[] {
  const times = [...new Set(plans.flatMap((p) => p.timestamps))].sort((a, b) => a - b);
  // Where each chunk starts (an index in `times`): the first allowed cut at or past an equal share.
  const starts = [0];
  for (let i = 1; i < times.length && starts.length < parts; i++)
    if (i >= Math.round((starts.length * times.length) / parts) && times[i] - times[i - 1] >= minGap)
      starts.push(i);
  // A clip with no frames has no chunk to come back from: such plans stay whole.
  if (starts.length === 1 || plans.some((p) => p.timestamps.length === 0))
    return [
      { plans: [...plans], from: plans.map((p, clip) => ({ clip, frames: p.timestamps.map((_, j) => j) })) },
    ];
  return starts.map((first, c) => {
    const lo = times[first];
    const hi = c + 1 < starts.length ? times[starts[c + 1]] : Infinity;
    const chunk: ClipChunk = { plans: [], from: [] };
    plans.forEach((plan, clip) => {
      const frames = plan.timestamps.flatMap((t, j) => (t >= lo && t < hi ? [j] : []));
      if (frames.length === 0) return;
      chunk.plans.push({
        ...plan,
        timestamps: frames.map((j) => plan.timestamps[j]),
        mask: frames.map((j) => plan.mask[j]),
      });
      chunk.from.push({ clip, frames });
    });
    return chunk;
  });
}

/** The clips of `plans` from each chunk's decoded clips (`decoded[c]` for `chunks[c].plans`), frames in place. */
export function joinClips(
  plans: readonly ClipPlan[],
  chunks: readonly ClipChunk[],
  decoded: readonly FrameClip[][],
): FrameClip[] {
  const parts: Array<Array<{ clip: FrameClip; frames: number[] }>> = plans.map(() => []);
  chunks.forEach((chunk, c) => {
    chunk.from.forEach(({ clip, frames }, k) => parts[clip].push({ clip: decoded[c][k], frames }));
  });
  return plans.map((plan, i) => {
    const [{ clip: first }] = parts[i];
    const [, height, width] = first.shape;
    const frameBytes = height * width * 3;
    const count = plan.timestamps.length;
    const data = new Uint8Array(count * frameBytes);
    const timestamps = new Array<number>(count);
    const mask = new Array<boolean>(count);
    const warnings = new Set<string>();
    for (const { clip, frames } of parts[i]) {
      frames.forEach((j, k) => {
        data.set(clip.data.subarray(k * frameBytes, (k + 1) * frameBytes), j * frameBytes);
        timestamps[j] = clip.timestamps[k];
        mask[j] = clip.mask[k];
      });
      for (const w of clip.warnings ?? []) warnings.add(w);
    }
    const joined: FrameClip = { ...first, data, shape: [count, height, width, 3], timestamps, mask };
    if (warnings.size > 0) joined.warnings = [...warnings];
    else delete joined.warnings;
    return joined;
  });
}
