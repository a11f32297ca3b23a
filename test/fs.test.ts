/**
 * The output-folder rules every command shares: `checkOutputDir` refuses up front what
 * `replaceDir` would refuse at the end, and `replaceDir` swaps a whole folder or leaves the
 * old one as it was.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { OUTPUT_DIRS, checkOutputDir, replaceDir } from '../src/fs.js';
import { tempDir } from './helpers.js';

const work = tempDir('fw-fs-');
afterAll(async () => {
  await chmod(join(work, 'ro'), 0o755).catch(() => undefined);
});

const kind = OUTPUT_DIRS.report;
/** A marker as framewise writes it (`n` tells two apart). */
const mark = (n = 0): string => JSON.stringify({ [kind.field]: kind.value, n });
const fillWith = (files: Record<string, string>) => async (tmp: string) => {
  for (const [name, text] of Object.entries(files)) await writeFile(join(tmp, name), text);
};

describe('checkOutputDir', () => {
  it('allows an absent or empty folder without --force', async () => {
    await (await checkOutputDir(join(work, 'absent', 'deeper'), kind)).release();
    await mkdir(join(work, 'empty'));
    await (await checkOutputDir(join(work, 'empty'), kind)).release();
  });

  it("asks for --force before replacing framewise's own folder, and allows it with it", async () => {
    const dir = join(work, 'own');
    await mkdir(dir);
    await writeFile(join(dir, kind.marker), mark());
    await expect(checkOutputDir(dir, kind)).rejects.toThrow(
      /already exists; pass `force: true` to replace it/,
    );
    const lock = await checkOutputDir(dir, kind, { force: true });
    // While one run holds the folder, another is refused.
    await expect(checkOutputDir(dir, kind, { force: true })).rejects.toThrow(
      /being written by another framewise run/,
    );
    await lock.release();
  });

  it("refuses, even with --force, a folder that is not framewise's or a file", async () => {
    const user = join(work, 'user');
    await mkdir(user);
    await writeFile(join(user, 'thesis.tex'), 'precious');
    const error = await checkOutputDir(user, kind, { force: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(
      /not a report folder that framewise wrote \(no metrics\.json saying "schema": "framewise.metrics\/1".*Nothing was touched/,
    );
    await writeFile(join(work, 'plain.txt'), 'x');
    await expect(checkOutputDir(join(work, 'plain.txt'), kind, { force: true })).rejects.toThrow(
      /exists and is not a folder/,
    );
    // A folder of another kind is not this kind's.
    const model = join(work, 'model');
    await mkdir(model);
    await writeFile(join(model, OUTPUT_DIRS.model.marker), JSON.stringify({ format: 'framewise-model' }));
    await expect(checkOutputDir(model, kind, { force: true })).rejects.toThrow(/no metrics\.json saying/);
    // A folder of the user's that holds a file of the marker's name is not framewise's either.
    const exp = join(work, 'exp');
    await mkdir(exp);
    await writeFile(join(exp, 'metrics.json'), '{"loss": 0.1}');
    await expect(checkOutputDir(exp, kind, { force: true })).rejects.toThrow(
      /not a report folder that framewise wrote/,
    );
    expect(await readFile(join(user, 'thesis.tex'), 'utf8')).toBe('precious');
  });

  it.skipIf(process.getuid?.() === 0)('refuses a folder whose parent is not writable', async () => {
    const ro = join(work, 'ro');
    await mkdir(ro);
    await chmod(ro, 0o555);
    await expect(checkOutputDir(join(ro, 'out', 'more'), kind)).rejects.toThrow(/is not writable/);
  });

  it('refuses a path under a plain file', async () => {
    await writeFile(join(work, 'afile'), 'x');
    await expect(checkOutputDir(join(work, 'afile', 'out'), kind)).rejects.toThrow(UsageError);
  });
});

describe('replaceDir', () => {
  it("replaces framewise's folder whole: no file of the old one survives", async () => {
    const dir = join(work, 'swap');
    await replaceDir(dir, kind, fillWith({ [kind.marker]: mark(1), 'val.csv': 'old' }));
    await replaceDir(dir, kind, fillWith({ [kind.marker]: mark(2) }));
    expect((await readdir(dir)).sort()).toEqual([kind.marker]);
    expect(await readFile(join(dir, kind.marker), 'utf8')).toBe(mark(2));
    // No temporary sibling is left behind.
    expect((await readdir(work)).filter((n) => n.startsWith('.swap'))).toEqual([]);
  });

  it('leaves the old folder as it was when filling fails', async () => {
    const dir = join(work, 'keep');
    await replaceDir(dir, kind, fillWith({ [kind.marker]: mark() }));
    await expect(
      replaceDir(dir, kind, async (tmp) => {
        await writeFile(join(tmp, kind.marker), 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await readFile(join(dir, kind.marker), 'utf8')).toBe(mark());
    expect((await readdir(work)).filter((n) => n.startsWith('.keep'))).toEqual([]);
  });

  it("refuses to replace a folder that is not framewise's, and touches nothing", async () => {
    const dir = join(work, 'theirs');
    await mkdir(dir);
    await writeFile(join(dir, 'notes.md'), 'mine');
    await expect(replaceDir(dir, kind, fillWith({ [kind.marker]: 'x' }))).rejects.toThrow(
      /Nothing was touched/,
    );
    expect(await readdir(dir)).toEqual(['notes.md']);
    expect(existsSync(join(dir, kind.marker))).toBe(false);
    expect((await readdir(work)).filter((n) => n.startsWith('.theirs'))).toEqual([]);
  });
});
