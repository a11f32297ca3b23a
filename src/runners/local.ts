/**
 * The local runner over an engine's `FrameEmbedder`: the one place a run on this machine builds its backbone
 * (through the engines' factory) and hands it to the embedding folder's `LocalRunner`.
 */
import { openFrameEmbedder, type BackendRequest, type EngineRequest } from '../engines/index.js';
import type { BackboneSpec } from '../embedding/backbone-spec.js';
import { EmbeddingCache } from '../embedding/cache.js';
import { checkSize, ingestStages, LocalRunner, type LocalRunnerOptions } from '../embedding/local-runner.js';
import { createDecoder, type DecoderRequest } from '../ingest/decoders.js';
import { DecodePool, decodeWorkers, pooledDecoder } from '../ingest/decode-pool.js';
import { debug } from '../log.js';
import type { RunnerEntry } from './entry.js';

/**
 * The options of `createLocalRunner()`, which builds the embedder and the store: a backbone spec,
 * an engine and a cache folder in place of `LocalRunnerOptions`' built `store` (and size).
 */
export interface CreateLocalRunnerOptions extends Omit<LocalRunnerOptions, 'size' | 'store' | 'decoder'> {
  /** The decoder asked for, resolved here once for the run. @default 'auto' */
  decoder?: DecoderRequest;
  backbone: BackboneSpec;
  /** @default 'auto' */
  engine?: EngineRequest;
  backend: BackendRequest;
  /** Frame side; must match the backbone's input size. @default the backbone's */
  size: number | undefined;
  /** Backbone worker threads. @default by cores */
  workers: number | undefined;
  /** The cache folder (embeddings and converted backbones), or false for none. */
  cache: string | false;
  /** Told when the backbone must first be prepared (converted to ONNX: seconds). */
  onPrepare?: (message: string) => void;
  signal?: AbortSignal;
}

/** Builds the backbone (lazily where a cached run may not need it) and the local runner over it. */
export async function createLocalRunner(settings: CreateLocalRunnerOptions): Promise<LocalRunner> {
  const { backbone, engine, backend, size, workers, cache, signal, onPrepare, ...rest } = settings;
  // Resolved by the run options: the engines do not check them again.
  const embedder = await openFrameEmbedder({
    backbone,
    engine: engine ?? 'auto',
    backend,
    cacheDir: cache === false ? undefined : cache,
    workers,
    intraOpThreads: undefined,
    onPrepare,
    signal,
    lazy: true,
  });
  try {
    const side = checkSize(size, embedder.inputSize);
    const decoder = await createDecoder(rest.decoder ?? 'auto');
    const workers = decodeWorkers(decoder.name, rest.concurrency);
    const { backboneId, engine, backend } = embedder;
    debug(
      'runner: backbone %s on %s (%s); decoder %s (%s), %d decode workers',
      backboneId,
      backend?.name ?? engine.name,
      backend?.reason ?? engine.reason,
      decoder.name,
      decoder.reason,
      workers,
    );
    return new LocalRunner(embedder, ingestStages, {
      ...rest,
      decoder: workers > 0 ? pooledDecoder(decoder, new DecodePool({ workers })) : decoder,
      size: side,
      store: cache === false ? undefined : new EmbeddingCache(cache),
    });
  } catch (error) {
    await embedder.dispose();
    throw error;
  }
}

/**
 * How many backbone calls the local runner keeps in flight: one running while the next batch
 * is packed (more would only queue behind the engine).
 */
export const INFERENCE_CONCURRENCY = 2;

/** The `local` runner's registry entry: this machine, the default. */
export const local: RunnerEntry = {
  help: 'this machine: ffmpeg decodes beside the backbone engine',
  open: (o, signal) =>
    createLocalRunner({
      backbone: o.backbone,
      engine: o.engine,
      backend: o.backend,
      size: o.size,
      workers: o.workers,
      cache: o.cache,
      sampling: o.sampling,
      fit: o.fit,
      concurrency: o.concurrency,
      threads: o.threads,
      decoder: o.decoder,
      seek: o.seek,
      batch: o.batch,
      inferenceConcurrency: INFERENCE_CONCURRENCY,
      timeoutMs: o.timeoutMs,
      onPrepare: o.onPrepare,
      signal,
    }),
};
