/**
 * samples/ is reproducible: scripts/make-samples.mjs, run with the ffmpeg that framewise
 * installs (@ffmpeg-installer/ffmpeg), writes byte for byte the committed files. Samples
 * made by another ffmpeg build fail here, with the file names.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('framewise-samples-');

/** sha256 of every video and CSV under `root` (the model folder is not made by this script). */
function hashes(root: string): Record<string, string> {
  const files = readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => /\.(mp4|csv)$/.test(f))
    .sort();
  return Object.fromEntries(files.map((f) => [f, createHash('sha256').update(readFileSync(join(root, f))).digest('hex')]));
}

describe('scripts/make-samples.mjs', () => {
  it('makes the committed samples/ byte for byte with the installed ffmpeg', () => {
    const env = { ...process.env };
    delete env.FFMPEG_PATH; // the binary framewise installs, as on a fresh clone
    const run = spawnSync(process.execPath, [join(ROOT, 'scripts', 'make-samples.mjs'), '--samples-only', '--samples-dir', dir], { encoding: 'utf8', env });
    expect(run.status, run.stderr).toBe(0);
    const committed = hashes(join(ROOT, 'samples'));
    expect(Object.keys(committed)).toHaveLength(7);
    expect(hashes(dir)).toEqual(committed);
  });
});
