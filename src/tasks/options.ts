/**
 * The options every task takes, as the CLI and the package entry see them. They are defined
 * in `embedding/options.ts`, where the runners share them; this module is light on purpose,
 * so the CLI checks its flags without loading the tasks.
 */
export { samplingForms } from '../ingest/sampling.js';
export { FITS } from '../ingest/types.js';
export { HEADS } from '../model/heads/registry.js';
export { resolveOptions, checkRedisUrl, checkQueueName, type PipelineOptions, type RemoteSettings } from '../embedding/options.js';
