/**
 * The inputs of every task: files, folders and manifests, discovered once, before any
 * backbone loads, so a path that does not exist is a usage error before any work.
 */
import { UsageError } from '../errors.js';
import { discover } from '../ingest/discover.js';
import type { VideoEntry } from '../ingest/types.js';
import { invalid } from '../validate.js';

/** One video to process, with what a dataset says about it (a label, segments, a span). */
export type InputEntry = VideoEntry;

/** What the tasks take: paths (files, folders, manifests), or entries already discovered. */
export type Inputs = string | readonly string[] | readonly InputEntry[];

/**
 * Discovers the videos of `inputs` (files, folders, manifests) in a stable order. Input
 * errors (a path that does not exist, nothing to process) are `UsageError`s.
 */
export async function discoverInputs(
  inputs: string | readonly string[],
  options: { signal?: AbortSignal } = {},
): Promise<InputEntry[]> {
  const list = typeof inputs === 'string' ? [inputs] : inputs;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.some((x) => typeof x !== 'string' || x.length === 0)
  ) {
    throw invalid('inputs', 'a path or a non-empty array of paths', inputs);
  }
  // discover() refuses a path that does not exist (a URL is read by ffmpeg: a missing one is an ENOENT record).
  const entries: InputEntry[] = await discover(list, options);
  if (entries.length === 0) throw new UsageError(`No videos found in ${list.join(', ')}`);
  return entries;
}

/** The entries of `inputs`: discovered from paths, or as given. */
export async function entriesOf(
  inputs: Inputs,
  options: { signal?: AbortSignal } = {},
): Promise<InputEntry[]> {
  if (
    Array.isArray(inputs) &&
    inputs.length > 0 &&
    inputs.every((x) => typeof x === 'object' && x !== null && typeof (x as InputEntry).path === 'string')
  ) {
    return [...(inputs as readonly InputEntry[])];
  }
  return discoverInputs(inputs as string | string[], options);
}

/** The label of the segment holding time `t` (`[start, end)`), else of the nearest one; null without segments. */
export function labelAt(
  segments: ReadonlyArray<{ start: number; end: number; label: string }>,
  t: number,
): string | null {
  let nearest: { d: number; label: string } | null = null;
  for (const s of segments) {
    if (t >= s.start && t < s.end) return s.label;
    const d = t < s.start ? s.start - t : t - s.end;
    if (!nearest || d < nearest.d) nearest = { d, label: s.label };
  }
  return nearest?.label ?? null;
}
