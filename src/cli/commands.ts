import type { CAC } from 'cac';

/** Every command registers itself here; add one line per command file. */
export const commands: Array<(cli: CAC) => void> = [];
