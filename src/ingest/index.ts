/**
 * `framewise/ingest`: probe a video, plan its clips, extract their frames. A package entry
 * (package.json `exports`): everything here is public API. It loads no tfjs.
 *
 * @module framewise/ingest
 */
export { probe, type ProbeOptions } from './probe.js';
export { planClips, parseSampling } from './sampling.js';
export { extractClips, type ExtractOptions, type ResolvedExtractOptions } from './extract.js';
export type { ProbeResult, ClipPlan, Sampling, Fit, FrameClip, Segment, VideoEntry } from './types.js';
export type { SamplerName, SamplingSpan } from './sampling.js';
export type {
  DecodeOptions,
  DecoderName,
  DecoderRequest,
  OpenOptions,
  OpenVideo,
  VideoDecoder,
} from './decoders.js';
export type { SeekMode } from './decode-plan.js';
export type { ExtractStrategy } from './extract-plan.js';
