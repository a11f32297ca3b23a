/**
 * The temporal heads, by the name that `head` and `--head` take: the one list of them. The
 * `HeadType` type, the checks of `head`, the CLI help, `buildHead()` and the fast training
 * step all read it. Adding a head is its file in this folder plus its line here (and its name in
 * `HeadType`, ../types.ts, which the published types need without tfjs). Light: no
 * tfjs (entries get it when they build).
 */
import { Registry } from '../../registry.js';
import type { HeadType } from '../types.js';
import type { HeadEntry } from './entry.js';
import { lstm } from './lstm.js';
import { gru } from './gru.js';
import { bilstm } from './bilstm.js';
import { mean } from './mean.js';

export type { HeadContext, HeadEntry } from './entry.js';
export type { HeadType };

/** The heads; the first is the default. `HeadType` (types.ts) names the same keys: `satisfies` checks both ways. */
export const HEADS = new Registry('head', { lstm, gru, bilstm, mean } satisfies Record<HeadType, HeadEntry>);
