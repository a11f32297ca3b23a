/** framewise's own version, read once from package.json (one level up from src/ and dist/). */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
}

export const FRAMEWISE_VERSION: string = readVersion();
