/** Ingest's public surface: probe a video, plan its clips, extract their frames. */
export { probe, type ProbeOptions } from './probe.js';
export { planClips, parseSampling } from './sampling.js';
export { extractClips, type ExtractOptions, type ResolvedExtractOptions } from './extract.js';
export type { ProbeResult, ClipPlan, Sampling, Fit, FrameClip, Segment, VideoEntry } from './types.js';
export type { SamplerName, SamplingSpan } from './sampling.js';
export type { DecoderName, DecoderRequest, VideoDecoder } from './decoders.js';
export type { SeekMode } from './decode-plan.js';
export {
  VIDEO_DEMUXERS,
  FORMATS_ENV,
  allowedFormats,
  allowedProtocols,
  isAllowedFormat,
  openOptions,
  ffmpegOpenArgs,
  withOpenArgs,
} from './open-policy.js';
