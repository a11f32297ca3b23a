import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeNpy, npyHeader } from '../../src/output/npy.js';
import { decodeNpy } from './helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('fw-npy-');
describe('npy', () => {
  it('pads the header so data starts at a multiple of 64', () => {
    const header = npyHeader([3, 16, 1280]);
    expect(header.length % 64).toBe(0);
    expect(header.subarray(10).toString('latin1')).toMatch(
      /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 16, 1280\), \} *\n$/,
    );
  });

  it('round-trips, and numpy reads it when python3 has numpy', () => {
    const data = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i / 7);
    const file = encodeNpy(data, [2, 3, 4]);
    const back = decodeNpy(file);
    expect(back.shape).toEqual([2, 3, 4]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    const path = join(dir, 'x.npy');
    writeFileSync(path, file);
    let out: string;
    try {
      out = execFileSync(
        'python3',
        [
          '-c',
          `import numpy as n; a=n.load(${JSON.stringify(path)}); print(a.dtype, a.shape, float(a[1,2,3]))`,
        ],
        { encoding: 'utf8' },
      );
    } catch {
      return; // no numpy here: the byte-level checks above still hold
    }
    expect(out.trim()).toBe(`float32 (2, 3, 4) ${Math.fround(23 / 7)}`);
  });
});
