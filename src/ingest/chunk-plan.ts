/**
 * One long video on several decoders at once (issue 33, deliverable 2): the pure half. The
 * decode plan's runs (decode-plan.ts) each start at a keyframe and are decoded without a
 * flush, so they are the units a video can be cut into: `chunkPlan` groups them into at most
 * `decoders` contiguous chunks of about equal cost (packets fed), each to be decoded by its
 * own decoder from its first keyframe (a seek) to its last packet. The frames are the same
 * as one decoder's: every run is decoded as the plan says, only by another decoder.
 *
 * Not wired in yet: the decoder that would run the chunks is inside libav.ts, which was being
 * changed (issue 30) when this was written. A chunk's decoder needs the packets of its span
 * (the demuxer reads stretches, not a whole index), so wiring it means either an index pass
 * first or chunking each stretch; both are libav.ts's business.
 *
 * No FFmpeg here: test/ingest/chunk-plan.test.ts checks it on packet lists written by hand.
 */
import {
  planDecode,
  type DecodePlan,
  type DecodePlanOptions,
  type DecodeRun,
  type PacketEntry,
} from './decode-plan.js';

/** A chunk: consecutive runs of the plan, decoded by one decoder. */
export interface DecodeChunk {
  /** The runs, in decode order. */
  runs: DecodeRun[];
  /** The packets it spans: from `first` (a keyframe, where its decoder seeks) to `end - 1`. */
  first: number;
  end: number;
  /** Packets fed (its runs' lengths): what the chunks are balanced on. */
  cost: number;
  /** Positions in the plan's targets it serves, ascending. */
  targets: number[];
}

export interface ChunkPlanOptions extends DecodePlanOptions {
  /**
   * A chunk costs a decoder's start and a seek, so runs are not split into chunks below this
   * many packets fed (the whole plan stays one chunk when it costs less than twice this).
   * @default 0
   */
  minCost?: number;
}

/** The decode plan of `targets` in `packets`, and its runs grouped into at most `decoders` chunks (see the module comment). */
export function chunkPlan(
  packets: readonly PacketEntry[],
  targets: readonly number[],
  decoders: number,
  options: ChunkPlanOptions = {},
): { plan: DecodePlan; chunks: DecodeChunk[] } {
  if (!Number.isInteger(decoders) || decoders < 1)
    throw new TypeError(`Expected a positive integer for \`decoders\` but received ${decoders}`);
  const plan = planDecode(packets, targets, options);
  const costs = plan.runs.map((run) => run.end - run.first);
  const total = costs.reduce((a, b) => a + b, 0);
  const minCost = options.minCost ?? 0;
  const most = Math.max(
    1,
    Math.min(decoders, plan.runs.length, minCost > 0 ? Math.floor(total / minCost) : Infinity),
  );
  const limit = smallestLimit(costs, most);
  const chunks: DecodeChunk[] = [];
  let current: DecodeRun[] = [];
  let cost = 0;
  const close = (): void => {
    if (current.length === 0) return;
    chunks.push({
      runs: current,
      first: current[0].first,
      end: current[current.length - 1].end,
      cost,
      targets: current.flatMap((run) => run.targets).sort((a, b) => a - b),
    });
    current = [];
    cost = 0;
  };
  plan.runs.forEach((run, i) => {
    if (current.length > 0 && cost + costs[i] > limit) close();
    current.push(run);
    cost += costs[i];
  });
  close();
  return { plan, chunks };
}

/**
 * The least cost L such that `costs`, cut greedily into contiguous groups of at most L each,
 * needs no more than `groups` groups: the optimal largest chunk (a binary search over L; the
 * greedy cut is optimal for a given L).
 */
function smallestLimit(costs: readonly number[], groups: number): number {
  const groupsFor = (limit: number): number => {
    let count = 1;
    let sum = 0;
    for (const c of costs) {
      if (sum + c > limit && sum > 0) {
        count++;
        sum = 0;
      }
      sum += c;
    }
    return count;
  };
  let lo = Math.max(0, ...costs);
  let hi = costs.reduce((a, b) => a + b, 0);
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (groupsFor(mid) <= groups) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
