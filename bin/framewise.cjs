#!/usr/bin/env node
/**
 * The `framewise` command's entry: it sizes libuv's thread pool, then runs dist/cli/main.js.
 *
 * libuv's pool (node-av's decode calls, sharp's resizes, file reads) is sized once, when it
 * first starts, from `UV_THREADPOOL_SIZE`; and an ES module entry starts it while the loader
 * reads its imports, before any line of it runs. A CommonJS entry is read synchronously, so
 * its first line is early enough. A size given in the environment is kept.
 *
 * The size is `libuvPoolSize()` of src/ingest/decode-pool.ts (a test holds the two equal):
 * two threads a decode worker (one per core), never fewer than libuv's 4.
 */
'use strict';
const { availableParallelism } = require('node:os');

/** As libuvPoolSize(cores) in src/ingest/decode-pool.ts. */
function poolSize(cores) {
  return Math.max(4, 2 * cores);
}

if (require.main === module) {
  if (!process.env.UV_THREADPOOL_SIZE)
    process.env.UV_THREADPOOL_SIZE = String(Math.min(1024, poolSize(availableParallelism())));
  import('../dist/cli/main.js');
} else {
  module.exports = { poolSize };
}
