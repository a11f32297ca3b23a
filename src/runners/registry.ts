/**
 * The runners: the one list of them.
 * `openRunner()` reads it; adding a runner is its entry file plus its line here.
 */
import type { EmbedRunner } from '../embedding/runner.js';
import { Registry } from '../registry.js';
import type { RunnerEntry } from './entry.js';
import type { ResolvedOptions } from '../embedding/options.js';
import { remote } from './remote.js';
import { local } from './local.js';

export type { RunnerEntry } from './entry.js';

/** The runners; the first is the default, which runs whatever no other takes. */
export const RUNNERS = new Registry('runner', { local, remote } satisfies Record<string, RunnerEntry>);

/** The runner for resolved options: the first in `RUNNERS` after the default that takes them, else the default. */
export function openRunner(options: ResolvedOptions, signal?: AbortSignal): Promise<EmbedRunner> {
  const [[, fallback], ...others] = RUNNERS.entries();
  return (others.find(([, runner]) => runner.takes?.(options))?.[1] ?? fallback).open(options, signal);
}
