import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { discover } from '../../src/ingest/discover.js';
import { fixture } from '../fixtures.js';
import { tempDir } from '../helpers.js';

const root = tempDir('framewise-discover-');
const data = join(root, 'data');

beforeAll(() => {
  // data/<label>/<video>, plus things a walk must skip or survive.
  for (const dir of ['cat', 'dog/deeper', '.hidden', 'empty'])
    mkdirSync(join(data, dir), { recursive: true });
  for (const file of [
    'cat/b.mp4',
    'cat/a.MOV',
    'cat/.secret.mp4',
    'dog/z.webm',
    'dog/deeper/y.mkv',
    '.hidden/x.mp4',
    'top.mp4',
    'notes.txt',
    'cat/readme.md',
  ]) {
    writeFileSync(join(data, file), 'x');
  }
  symlinkSync('..', join(data, 'dog', 'loop')); // a cycle: dog/loop -> data
  symlinkSync(join(data, 'cat', 'b.mp4'), join(data, 'dog', 'b-link.mp4')); // the same file twice
  symlinkSync(join(root, 'missing.mp4'), join(data, 'dog', 'dangling.mp4'));
  mkdirSync(join(root, 'nothing'));
  writeFileSync(join(root, 'nothing', 'a.txt'), 'x');
  writeFileSync(join(data, 'list.csv'), 'path,label,start,end\ncat/b.mp4,cat,1,2.5\n"dog/z.webm",dog,,\n');
  writeFileSync(
    join(data, 'seg.jsonl'),
    '{"path":"top.mp4","segments":[{"start":0,"end":1,"label":"a"},{"start":1,"end":2,"label":"b"}]}\n\n{"path":"/abs/v.mp4","label":"x"}\n',
  );
});

describe('discover()', () => {
  it('walks a folder: video extensions only, sorted, hidden skipped, loops survived, every linked name kept, labels from class folders', async () => {
    expect(await discover(data)).toEqual([
      { path: join(data, 'cat/a.MOV'), label: 'cat' },
      { path: join(data, 'cat/b.mp4'), label: 'cat' },
      { path: join(data, 'dog/b-link.mp4'), label: 'dog' },
      { path: join(data, 'dog/deeper/y.mkv'), label: 'dog' },
      { path: join(data, 'dog/z.webm'), label: 'dog' },
      { path: join(data, 'top.mp4') },
    ]);
  });

  it('keeps every name of a symlink farm: files and folders linking to one pool file are each an input with their own label', async () => {
    const farm = join(root, 'farm');
    mkdirSync(join(root, 'pool'));
    writeFileSync(join(root, 'pool', 'x.mp4'), 'x');
    for (const dir of ['cats', 'dogs']) mkdirSync(join(farm, dir), { recursive: true });
    symlinkSync(join(root, 'pool', 'x.mp4'), join(farm, 'cats', 'a.mp4'));
    symlinkSync(join(root, 'pool', 'x.mp4'), join(farm, 'dogs', 'b.mp4'));
    symlinkSync(join(root, 'pool'), join(farm, 'birds')); // a folder reached by a link, once more under another name
    symlinkSync(join(root, 'pool'), join(farm, 'fish'));
    expect(await discover(farm)).toEqual([
      { path: join(farm, 'birds/x.mp4'), label: 'birds' },
      { path: join(farm, 'cats/a.mp4'), label: 'cats' },
      { path: join(farm, 'dogs/b.mp4'), label: 'dogs' },
      { path: join(farm, 'fish/x.mp4'), label: 'fish' },
    ]);
  });

  it('gives no folder labels with labels: none, and the same order every time', async () => {
    const a = await discover(data, { labels: 'none' });
    expect(a.every((e) => e.label === undefined)).toBe(true);
    expect(await discover(data, { labels: 'none' })).toEqual(a);
  });

  it('reads a CSV manifest: paths relative to it, optional start and end, file order kept', async () => {
    expect(await discover(join(data, 'list.csv'))).toEqual([
      { path: join(data, 'cat/b.mp4'), label: 'cat', start: 1, end: 2.5 },
      { path: join(data, 'dog/z.webm'), label: 'dog' },
    ]);
  });

  it('reads a JSONL manifest with labels or segments; absolute paths stay', async () => {
    expect(await discover(join(data, 'seg.jsonl'))).toEqual([
      {
        path: join(data, 'top.mp4'),
        segments: [
          { start: 0, end: 1, label: 'a' },
          { start: 1, end: 2, label: 'b' },
        ],
      },
      { path: '/abs/v.mp4', label: 'x' },
    ]);
  });

  it('reads the fixture manifests, and keeps the order of several inputs', async () => {
    const entries = await discover([
      fixture('arrow/test.csv'),
      fixture('segments/test.jsonl'),
      fixture('edge/counter.mp4'),
    ]);
    expect(entries).toHaveLength(20 + 4 + 1);
    expect(entries[0]).toEqual({ path: fixture('arrow/forward/zoom-pal.mp4'), label: 'forward' });
    expect(entries[20].segments?.[0]).toMatchObject({ start: 0 });
    expect(entries[24]).toEqual({ path: fixture('edge/counter.mp4') });
  });

  it('takes a file given by name whatever its extension', async () => {
    expect(await discover(join(data, 'notes.txt'))).toEqual([{ path: join(data, 'notes.txt') }]);
  });

  it.each([
    [() => join(root, 'nope'), /Input .*nope does not exist/],
    [() => join(root, 'nothing'), /Input folder .*nothing has no video files/],
    [() => join(data, 'empty'), /has no video files/],
  ])('reports input errors up front (%#)', async (input, message) => {
    const error = await discover(input()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });

  it.each([
    ['bad-header.csv', 'file,label\na.mp4,x\n', /needs the header `path,label\[,start,end\]`/],
    [
      'bad-time.csv',
      'path,label,start\na.mp4,x,soon\n',
      /line 2: expected a number of seconds >= 0 for `start` but received "soon"/,
    ],
    [
      'bad-span.csv',
      'path,label,start,end\na.mp4,x,3,2\n',
      /line 2: `end` \(2\) must be after `start` \(3\)/,
    ],
    ['bad.jsonl', '{"path":"a.mp4"}\n{nope}\n', /line 2: not JSON/],
    [
      'bad-seg.jsonl',
      '{"path":"a.mp4","segments":[{"start":0,"end":1}]}\n',
      /`segments\[0\]` needs start, end and a label/,
    ],
    ['empty.csv', 'path,label\n', /lists no videos/],
  ])('rejects a bad manifest %s with the line', async (name, text, message) => {
    const path = join(root, name);
    writeFileSync(path, text);
    await expect(discover(path)).rejects.toThrow(message);
  });

  it('validates its arguments', async () => {
    await expect(discover([])).rejects.toThrow(
      /Expected a path or a non-empty array of paths for `inputs` but received \[\]/,
    );
    await expect(discover(data, { labels: 'dirs' as never })).rejects.toThrow(
      /Expected one of 'folders', 'none' for `options.labels`/,
    );
  });
});
