import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverInputs, entriesOf, labelAt } from '../../src/tasks/inputs.js';
import { fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-inputs-');

describe('labelAt()', () => {
  const segments = [
    { start: 0, end: 1.5, label: 'bars' },
    { start: 1.5, end: 3, label: 'noise' },
    { start: 3.2, end: 4, label: 'fractal' },
  ];
  it.each([
    [0, 'bars'],
    [1.4999, 'bars'],
    [1.5, 'noise'], // [start, end): a boundary belongs to the later segment
    [2.99, 'noise'],
    [3.05, 'noise'], // in a gap: the nearest segment (0.05 from noise, 0.15 from fractal)
    [3.15, 'fractal'],
    [4, 'fractal'], // past the end: the last segment
    [-0.1, 'bars'],
  ])('labelAt(t = %f) is %s', (t, label) => {
    expect(labelAt(segments, t)).toBe(label);
  });
});

describe('labelAt() without segments', () => {
  it('is null', () => {
    expect(labelAt([], 1)).toBeNull();
  });
});

describe('discoverInputs()', () => {
  it('takes a file named in bytes that are not UTF-8 (it arrives as its lossy decoding): a BAD_NAME record later, not "does not exist"', async () => {
    const names = tempDir('fw-inputs-names-');
    writeFileSync(Buffer.from(`${names}/caf\xe9.mp4`, 'latin1'), 'x');
    const lossy = join(names, 'caf\uFFFD.mp4');
    expect(await discoverInputs(lossy)).toEqual([{ path: lossy }]);
    await expect(discoverInputs(join(names, 'nothere\uFFFD.mp4'))).rejects.toThrow(/does not exist/);
  });

  it('rejects a path that does not exist, before any work', async () => {
    await expect(discoverInputs(join(dir, 'missing'))).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/does not exist/),
    });
  });

  it('rejects a folder with no videos', async () => {
    writeFileSync(join(dir, 'notes.txt'), 'not a video');
    await expect(discoverInputs(dir)).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/has no video files/),
    });
  });

  it.each([[[]], [['']], [[42]]])('rejects %j as inputs', async (inputs) => {
    await expect(discoverInputs(inputs as string[])).rejects.toThrow(
      /Expected a path or a non-empty array of paths for `inputs`/,
    );
  });
});

describe('entriesOf()', () => {
  it('discovers paths, and passes discovered entries through untouched', async () => {
    const path = fixture('edge/counter.mp4');
    const found = await entriesOf([path]);
    expect(found.map((e) => e.path)).toEqual([path]);
    const given = [{ path, label: 'x' }];
    expect(await entriesOf(given)).toEqual(given);
  });
});
