/**
 * One ONNX Runtime session and its runs, the same code on the main thread (the in-process
 * embedder) and in the ONNX worker (worker.ts), so both give the same numbers.
 */
import { ModelError } from '../../errors.js';
import type { BackboneInfo, OnnxBackbone } from '../../embedding/backbone-spec.js';
import { sessionOptions, type Ort, type ThreadPlan } from './runtime.js';
import { openUserModel, type SessionPlan } from './user-model.js';

type Session = import('onnxruntime-node').InferenceSession;

/**
 * What a session is opened from, as plain data that crosses to a worker: a user's `.onnx`
 * spec (read and checked where the session opens), or a converted model's bytes with what
 * the main thread found out about it.
 */
export type OnnxSource =
  | { kind: 'user'; spec: OnnxBackbone }
  | { kind: 'converted'; bytes: Uint8Array; info: BackboneInfo; what: string };

/** An open session: how frames go in, what the backbone is, and words for the reason. */
export interface OpenSession {
  session: Session;
  plan: SessionPlan;
  info: BackboneInfo;
  what: string;
}

/** Opens `source` in a session with the thread plan's options. */
export async function openSession(
  ort: Ort,
  source: OnnxSource,
  threads: ThreadPlan,
  signal?: AbortSignal,
): Promise<OpenSession> {
  if (source.kind === 'user') {
    const { session, plan, info } = await openUserModel(ort, source.spec, sessionOptions(threads), signal);
    return { session, plan, info, what: `${info.name} as given (${plan.describe})` };
  }
  const { bytes, info } = source;
  const session = await ort.InferenceSession.create(bytes, sessionOptions(threads));
  const D = info.dim;
  const plan: SessionPlan = {
    inputName: session.inputNames[0],
    outputName: session.outputNames[0],
    // A view, not a copy: the graph takes uint8 [n, S, S, 3] and normalises inside.
    input: (frames, n) => new ort.Tensor('uint8', frames, [n, info.inputSize, info.inputSize, 3]),
    read: (y, n) => {
      if (y.dims.length !== 2 || y.dims[0] !== n || y.dims[1] !== D)
        throw new ModelError(
          `the ONNX backbone gave [${y.dims.join(', ')}] for ${n} frames, expected [${n}, ${D}]`,
        );
      return y.data as Float32Array;
    },
    describe: 'converted',
  };
  return { session, plan, info, what: source.what };
}

/**
 * `frames` uint8 frames [frames, S, S, 3] through the session, `runFrames` at a time;
 * float32 [frames, D]. The signal is checked between runs (a run itself is not interrupted).
 */
export async function runSession(
  open: OpenSession,
  data: Uint8Array,
  frames: number,
  runFrames: number,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const { session, plan, info } = open;
  const D = info.dim;
  const frameSize = info.inputSize * info.inputSize * 3;
  const out = new Float32Array(frames * D); // [B, T, D] = [B*T, D]
  for (let first = 0; first < frames; first += runFrames) {
    signal?.throwIfAborted();
    const count = Math.min(runFrames, frames - first);
    const input = plan.input(data.subarray(first * frameSize, (first + count) * frameSize), count); // [count, S, S, 3] as the model takes it
    const result = await session.run({ [plan.inputName]: input }, [plan.outputName]);
    try {
      const y = plan.read(result[plan.outputName], count); // [count, D]
      if (y.length !== count * D)
        throw new ModelError(
          `the ONNX backbone gave ${y.length} values for ${count} frames, expected ${count} x ${D}`,
        );
      out.set(y, first * D);
    } finally {
      for (const t of Object.values(result)) t.dispose();
    }
  }
  return out;
}
