import { debuglog } from 'node:util';

/** Library diagnostics: `NODE_DEBUG=framewise`. Library code never prints otherwise. */
export const debug = debuglog('framewise');
