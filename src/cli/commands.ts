import type { CAC } from 'cac';
import { register as classify } from './classify.js';
import { register as compare } from './compare.js';
import { register as embed } from './embed.js';
import { register as evaluate } from './eval.js';
import { register as exportModel } from './export.js';
import { register as info } from './info.js';
import { register as split } from './split.js';
import { register as status } from './status.js';
import { register as train } from './train.js';
import { register as worker } from './worker.js';

/** Every command registers itself here; add one line per command file. */
export const commands: Array<(cli: CAC) => void> = [
  embed,
  train,
  classify,
  evaluate,
  split,
  compare,
  info,
  exportModel,
  worker,
  status,
];
