/** The `tfjs` engine's registry entry: TensorFlow.js, loaded on `create`. */
import { isOnnxBackbone } from '../../embedding/backbone-spec.js';
import type { EngineEntry } from '../entry.js';

export const tfjs: EngineEntry = {
  help: 'TensorFlow.js on the --backend',
  runs: (backbone) => !isOnnxBackbone(backbone),
  async create(settings, choice) {
    const { createEmbedder } = await import('./embedder.js');
    const { backbone, backend, workers, cacheDir, signal } = settings;
    const reasonPrefix = `engine ${choice.request}: tfjs${choice.because ? `, because ${choice.because}` : ''}`;
    return createEmbedder({ backbone, backend, workers, cacheDir, signal, reasonPrefix });
  },
};
