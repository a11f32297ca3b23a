/**
 * A minimal writer for NumPy's `.npy` format, version 1.0: the magic string `\x93NUMPY`,
 * the version bytes 1 and 0, a little-endian uint16 header length, then an ASCII Python
 * dict literal (`descr`, `fortran_order`, `shape`) padded with spaces and ended by `\n` so
 * that the data starts at a multiple of 64 bytes, then the raw C-order data.
 */
import { createHash } from 'node:crypto';
import { basename, extname } from 'node:path';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ALIGN = 64;

/** The header bytes of a float32 (`<f4`), C-order array of `shape`. */
export function npyHeader(shape: readonly number[]): Buffer {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  // 6 magic + 2 version + 2 length = 10 bytes before the dict; the dict ends with '\n'.
  const unpadded = 10 + dict.length + 1;
  const padding = (ALIGN - (unpadded % ALIGN)) % ALIGN;
  const text = `${dict}${' '.repeat(padding)}\n`;
  const header = Buffer.alloc(10 + text.length);
  MAGIC.copy(header, 0);
  header[6] = 1; // major version
  header[7] = 0; // minor version
  header.writeUInt16LE(text.length, 8);
  header.write(text, 10, 'latin1');
  return header;
}

/** The whole `.npy` file for float32 `data` shaped `shape` (little-endian, as on x86 and ARM). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length)
    throw new RangeError(
      `npy: shape [${shape.join(', ')}] holds ${count} values but the data has ${data.length}`,
    );
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([npyHeader(shape), body]);
}

/**
 * A file name for a video's `.npy`: its base name plus a hash of the full path and the span
 * (a manifest row's start and end), so two `a.mp4` in different folders, or two spans of one
 * video, do not collide. Without a span the hash is of the path alone.
 */
export function npyNameFor(
  videoPath: string,
  span: { start?: number; end?: number } = {},
  extension = '.npy',
): string {
  const unit =
    span.start === undefined && span.end === undefined
      ? videoPath
      : `${videoPath}\0${span.start ?? ''}\0${span.end ?? ''}`;
  const hash = createHash('sha1').update(unit).digest('hex').slice(0, 10);
  return `${fileStem(videoPath)}-${hash}${extension}`;
}

/** A video's base name without its extension, safe as a file name (at most 80 characters). */
export function fileStem(videoPath: string): string {
  return (
    basename(videoPath, extname(videoPath))
      .replace(/[^\w.-]+/g, '_')
      .slice(0, 80) || 'video'
  );
}
