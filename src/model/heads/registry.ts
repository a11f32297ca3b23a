/**
 * The temporal heads, by the name that `head` and `--head` take: the one list of them. The
 * `HeadType` type, the checks of `head`, the CLI help, `buildHead()` and the fast training
 * step all read it. Adding a head is its file in this folder plus its line here. Light: no
 * tfjs (entries get it when they build).
 */
import { Registry, type NameOf } from '../../registry.js';
import type { HeadEntry } from './entry.js';
import { lstm } from './lstm.js';
import { gru } from './gru.js';
import { bilstm } from './bilstm.js';
import { mean } from './mean.js';

export type { HeadContext, HeadEntry } from './entry.js';

/** The heads; the first is the default. */
export const HEADS = new Registry('head', { lstm, gru, bilstm, mean } satisfies Record<string, HeadEntry>);

export type HeadType = NameOf<typeof HEADS>;
