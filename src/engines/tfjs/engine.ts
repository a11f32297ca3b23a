/** The `tfjs` engine's registry entry: TensorFlow.js, loaded on `create`. */
import { isOnnxBackbone, type BackboneInfo } from '../../embedding/backbone-spec.js';
import type { FrameEmbedder } from '../../embedding/frame-embedder.js';
import type { EngineEntry } from '../entry.js';

/** A tfjs embedder whose `backend` also says how the engine was chosen. */
class Relabelled implements FrameEmbedder {
  constructor(
    private readonly inner: FrameEmbedder,
    readonly backend: { name: string; reason: string },
  ) {}
  get backboneId(): string {
    return this.inner.backboneId;
  }
  get inputSize(): number {
    return this.inner.inputSize;
  }
  get dim(): number {
    return this.inner.dim;
  }
  get backbone(): BackboneInfo {
    return this.inner.backbone;
  }
  embedClips(data: Uint8Array, shape: [number, number, number, number, 3], options?: { signal?: AbortSignal; transfer?: boolean }): Promise<Float32Array> {
    return this.inner.embedClips(data, shape, options);
  }
  prepare(): void {
    this.inner.prepare?.();
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

export const tfjs: EngineEntry = {
  help: 'TensorFlow.js on the --backend',
  runs: (backbone) => !isOnnxBackbone(backbone),
  async create(settings, choice) {
    const { createEmbedder } = await import('./embedder.js');
    const { backbone, backend, workers, cacheDir, signal } = settings;
    const embedder = await createEmbedder({ backbone, backend, workers, cacheDir, signal });
    const prefix = `engine ${choice.request}: tfjs${choice.because ? `, because ${choice.because}` : ''}`;
    return new Relabelled(embedder, { name: embedder.backend.name, reason: `${prefix}; ${embedder.backend.reason}` });
  },
};
