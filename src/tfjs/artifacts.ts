/**
 * tfjs model files without tfjs-node: pure tfjs has no `file://` handler, so model.json and
 * the binary weights are read and written here and handed to tfjs through
 * `tf.io.fromMemory` / `tf.io.withSaveHandler`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tf } from './tf.js';
import { ModelError } from '../errors.js';
import { OUTPUT_DIRS, replaceDir, type OwnedDir } from '../fs.js';

type Artifacts = tf.io.ModelArtifacts;

/** The weight bytes of a set of artifacts as one ArrayBuffer. */
export function weightBytes(artifacts: Artifacts): ArrayBuffer {
  const data = artifacts.weightData;
  if (data === undefined) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(data);
}

/** Serialises a LayersModel in memory: topology, weight specs and one weight buffer. */
export async function modelToArtifacts(model: tf.LayersModel): Promise<Artifacts> {
  let saved: Artifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved) throw new ModelError('serialising the model produced nothing');
  return { ...saved, weightData: weightBytes(saved) };
}

/** sha256 over a topology (as JSON) and weight bytes, hex. */
export function hashArtifacts(topology: unknown, weights: ArrayBuffer): string {
  return createHash('sha256')
    .update(JSON.stringify(topology ?? null))
    .update(new Uint8Array(weights))
    .digest('hex');
}

/**
 * Writes `model.json` + `weights.bin` in the tfjs LayersModel format into `dir`, atomically:
 * everything goes to a temporary sibling folder first, which is then renamed into place.
 * An existing `dir` is replaced.
 */
export async function writeArtifacts(
  dir: string,
  artifacts: Artifacts,
  extraFiles: Record<string, string | Uint8Array> = {},
  kind: OwnedDir = OUTPUT_DIRS.tfjs,
): Promise<void> {
  await replaceDir(dir, kind, async (tmp) => {
    const files = artifactFiles(artifacts);
    await writeFile(path.join(tmp, 'weights.bin'), files['weights.bin']);
    for (const [name, data] of Object.entries(extraFiles)) {
      // A name may hold a sub-folder (an ensemble's `member-2/model.json`).
      await mkdir(path.dirname(path.join(tmp, name)), { recursive: true });
      await writeFile(path.join(tmp, name), data);
    }
    await writeFile(path.join(tmp, 'model.json'), files['model.json']);
  });
}

/** The two files of a LayersModel in the tfjs format: `model.json` and `weights.bin`. */
export function artifactFiles(artifacts: Artifacts): { 'model.json': string; 'weights.bin': Uint8Array } {
  const modelJson: Record<string, unknown> = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
  return { 'model.json': JSON.stringify(modelJson), 'weights.bin': new Uint8Array(weightBytes(artifacts)) };
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** `model.json` itself, from a folder, a path to model.json, or an http(s) URL. */
function modelJsonLocation(source: string): string {
  if (isUrl(source)) return source.endsWith('.json') ? source : source.replace(/\/?$/, '/model.json');
  return source.endsWith('.json') ? source : path.join(source, 'model.json');
}

async function fetchBytes(location: string, signal?: AbortSignal): Promise<Uint8Array> {
  if (isUrl(location)) {
    const response = await fetch(location, { signal });
    if (!response.ok) throw new ModelError(`fetching ${location} failed: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  return new Uint8Array(await readFile(location));
}

/**
 * Reads tfjs model artifacts (layers or graph model) from a folder, a model.json path or a
 * URL, weights included, as one buffer.
 */
export async function readArtifacts(
  source: string,
  options: { signal?: AbortSignal } = {},
): Promise<Artifacts> {
  const location = modelJsonLocation(source);
  let json: Record<string, any>;
  try {
    json = JSON.parse(Buffer.from(await fetchBytes(location, options.signal)).toString('utf8'));
  } catch (error) {
    if (error instanceof ModelError) throw error;
    throw new ModelError(`cannot read a tfjs model.json at ${location}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!json || typeof json !== 'object' || !json.modelTopology) {
    throw new ModelError(`${location} is not a tfjs model.json (no modelTopology)`);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of (json.weightsManifest ?? []) as tf.io.WeightsManifestConfig) {
    for (const p of group.paths) {
      const where = isUrl(location) ? new URL(p, location).toString() : path.join(path.dirname(location), p);
      try {
        parts.push(await fetchBytes(where, options.signal));
      } catch (error) {
        if (error instanceof ModelError) throw error;
        throw new ModelError(`cannot read weight file ${where}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    specs.push(...group.weights);
  }
  const total = parts.reduce((n, part) => n + part.byteLength, 0);
  const weights = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    weights.set(part, offset);
    offset += part.byteLength;
  }
  return {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: specs,
    weightData: weights.buffer,
    userDefinedMetadata: json.userDefinedMetadata,
  };
}

/** A LayersModel from artifacts held in memory. */
export async function layersModelFromArtifacts(artifacts: Artifacts): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}
