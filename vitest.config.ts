import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Real ffmpeg and a real backbone on 2 cores: give slow tests room, and keep files
    // from fighting over the CPUs.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    pool: 'forks',
    // The leak tests collect garbage before they read RSS; without it V8's heap alone moves RSS by tens of MiB.
    execArgv: ['--expose-gc'],
  },
});
