/** framewise: the public API, exported by name. */
export { FramewiseError, IngestError, FfmpegError, ShapeError, UsageError, ModelError } from './errors.js';
export type { ErrorCode, IngestErrorCode } from './errors.js';
