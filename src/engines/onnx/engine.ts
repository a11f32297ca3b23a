/** The `onnx` engine's registry entry: ONNX Runtime (onnxruntime-node), loaded on `create`. */
import { isOnnxBackbone } from '../../embedding/backbone-spec.js';
import type { EngineEntry } from '../entry.js';

export const onnx: EngineEntry = {
  help: 'ONNX Runtime, when onnxruntime-node loads',
  // Registry backbones and tfjs LayersModels are converted; an .onnx model runs as it is.
  runs: () => true,
  // tfjs cannot run an ONNX model.
  only: (backbone) => (isOnnxBackbone(backbone) ? 'an .onnx backbone' : undefined),
  async create(settings, choice) {
    const { createOnnxEmbedder } = await import('./embedder.js');
    const { backbone, cacheDir, intraOpThreads, onPrepare, signal } = settings;
    return createOnnxEmbedder({
      backbone,
      cacheDir,
      intraOpThreads,
      onPrepare,
      signal,
      reasonPrefix: `engine ${choice.request}${choice.because ? `, because ${choice.because}` : ''}`,
    });
  },
};
