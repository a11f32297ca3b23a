/**
 * The options every task takes, as the CLI and the package entry see them, with the registries
 * they are checked against (for `--help`). Their type is the contract in `embedding/options.ts`,
 * and `runners/options.ts` resolves them (the runners share the one check). This module is
 * light on purpose, so the CLI checks its flags without loading the tasks, tfjs or an engine.
 */
export { samplingForms } from '../ingest/sampling.js';
export { FITS } from '../ingest/types.js';
export { SEEK_MODES } from '../ingest/decode-plan.js';
export { EXPORT_FORMATS, HEAD_MODES } from '../model/model-info.js';
export { AGGREGATES } from '../evaluation/aggregate.js';
export { HEADS } from '../model/heads/registry.js';
export {
  CLASS_WEIGHTS,
  DEFAULT_LR_SCHEDULE,
  DEFAULT_MIN_DELTA,
  LR_SCHEDULES,
  MONITORS,
  stopMessage,
} from '../model/train-options.js';
export { ENGINES } from '../engines/index.js';
export { BACKENDS } from '../tfjs/backends.js';
export { DECODERS } from '../ingest/decoders.js';
export { resolveOptions, checkRedisUrl, checkRedisCa, checkQueueName } from '../runners/options.js';
export type { PipelineOptions, RemoteSettings } from '../embedding/options.js';
export { DEFAULT_THRESHOLDS } from '../evaluation/metrics.js';
