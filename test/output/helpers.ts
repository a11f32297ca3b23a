/** Reads a float32 `.npy` as `encodeNpy` writes it (the tests' reader; numpy is the users'). */
export function decodeNpy(file: Buffer): { shape: number[]; data: Float32Array } {
  if (!file.subarray(0, 6).equals(Buffer.from('\x93NUMPY', 'latin1'))) throw new Error('npy: bad magic');
  const length = file.readUInt16LE(8);
  const header = file.subarray(10, 10 + length).toString('latin1');
  if (!header.includes("'descr': '<f4'")) throw new Error(`npy: only <f4 is supported, got ${header}`);
  const shapeText = /'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '';
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const start = 10 + length;
  const bytes = file.subarray(start);
  const data = new Float32Array(bytes.length / 4);
  Buffer.from(data.buffer).set(bytes);
  return { shape, data };
}
