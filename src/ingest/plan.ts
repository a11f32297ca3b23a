/** Alias module: the sampling plans live in ./sampling.ts (kept for imports of `ingest/plan.js`). */
export { planClips, parseSampling, validateSampling, formatSampling } from './sampling.js';
