/**
 * A model folder's description, framewise.json, read and checked. Apart from model-files.ts so
 * that what only reads it (the CLI's classify, before it opens its output) loads no tfjs.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelError } from '../errors.js';
import { OUTPUT_DIRS } from '../fs.js';
import { isPlainObject } from '../validate.js';
import { FRAMEWISE_VERSION } from '../version.js';
import type { ModelInfo } from './types.js';

/** The labelling modes, declared once: `clip` labels each clip (many-to-one), `frame` each sampled frame (many-to-many). */
export const HEAD_MODES = ['clip', 'frame'] as const;
export type HeadMode = (typeof HEAD_MODES)[number];

/** What `framewise export` writes, declared once: one ONNX graph, or a tfjs LayersModel folder. */
export const EXPORT_FORMATS = ['onnx', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const MODEL_INFO_FILE = OUTPUT_DIRS.model.marker;

/** Reads and checks framewise.json in `dir`. */
export async function readModelInfo(dir: string): Promise<ModelInfo> {
  const file = path.join(dir, MODEL_INFO_FILE);
  let info: ModelInfo;
  try {
    info = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelError(
      code === 'ENOENT'
        ? `${dir} is not a framewise model folder (no ${MODEL_INFO_FILE})`
        : `cannot read ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (!isPlainObject(info) || info.format !== 'framewise-model')
    throw new ModelError(`${file} is not a framewise model description`);
  if (info.training === true) {
    throw new ModelError(
      `${dir} holds a training run that has not finished (interrupted?): go on with \`framewise train ... --resume\`, or start over with --force`,
    );
  }
  if (info.formatVersion !== 1) {
    throw new ModelError(
      `${file} has format version ${String(info.formatVersion)}; this framewise (${FRAMEWISE_VERSION}) reads version 1`,
    );
  }
  if (!Array.isArray(info.labels) || info.labels.length < 2 || !info.head || !info.dim) {
    throw new ModelError(`${file} is incomplete (labels, head or dim missing)`);
  }
  return info;
}
