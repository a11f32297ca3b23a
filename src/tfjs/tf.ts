/**
 * tfjs, loaded once for all of framewise's model code.
 *
 * Through `require`, not `import`: @tensorflow/tfjs ships CommonJS bundles (about 5 MB with
 * its sub-packages), and Node's ESM loader runs its CJS export scanner over all of them
 * before an `import` resolves, in every thread that loads tfjs. Measured here that costs
 * 0.4-0.5 CPU-s per thread (import 0.53-0.69 s against require 0.14-0.20 s), paid by the
 * main thread and by each inference worker. The module instance is the same either way, so
 * code and tests that `import` tfjs share it.
 */
import tf = require('@tensorflow/tfjs');

// A library never prints: production mode turns off tfjs's console warnings, among them
// the cpu backend's "Hi, looks like you are running TensorFlow.js in Node.js" on first use.
tf.enableProdMode();

export { tf };
