/**
 * Every TypeScript and shell block in README.md and docs/**\/*.md runs as written. TypeScript
 * blocks are type-checked (strict) against the built package, `import ... from 'framewise'`
 * resolving to this repository, then run; shell blocks run under `bash -euo pipefail` with
 * `framewise` on the PATH. Each block runs in a folder of its own that holds only `samples/`,
 * so a block works on the samples or on files it makes itself. All blocks share one cache
 * folder, so the backbone is converted once. A block preceded by `<!-- not-run: reason -->`
 * is skipped, with its reason in the test's title.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from './cli/helpers.js';
import { tempDir } from './helpers.js';

interface Block {
  file: string;
  line: number;
  lang: 'ts' | 'sh';
  code: string;
  skip?: string;
}

const LANGS: Record<string, Block['lang']> = { ts: 'ts', typescript: 'ts', sh: 'sh', bash: 'sh' };

/** README.md and every .md under docs/, in a stable order. */
function docFiles(): string[] {
  const docs = join(ROOT, 'docs');
  const under = existsSync(docs)
    ? readdirSync(docs, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.md'))
        .sort()
        .map((f) => join(docs, f))
    : [];
  return [join(ROOT, 'README.md'), ...under];
}

/** The fenced ts/sh blocks of a Markdown file; a `<!-- not-run: why -->` just before one skips it. */
export function blocksOf(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === '```');
    if (end < 0) break;
    const lang = LANGS[open[2]];
    if (lang) {
      let k = i - 1;
      while (k >= 0 && lines[k].trim() === '') k--;
      const skip = k >= 0 ? /^\s*<!--\s*not-run:\s*(.+?)\s*-->\s*$/.exec(lines[k])?.[1] : undefined;
      const indent = open[1].length;
      const code = lines
        .slice(i + 1, end)
        .map((l) => l.slice(indent))
        .join('\n');
      blocks.push({ file: relative(ROOT, file), line: i + 1, lang, code, ...(skip ? { skip } : {}) });
    }
    i = end;
  }
  return blocks;
}

const blocks = docFiles().flatMap((file) => blocksOf(file, readFileSync(file, 'utf8')));
const runnable = blocks.filter((b) => !b.skip);
const name = (b: Block) => `${b.file}:${b.line}`;

const root = tempDir('framewise-docs-');
let project: string;
let typeErrors = new Map<Block, string>();

beforeAll(() => {
  assertBuilt();
  project = join(root, 'project');
  // A project that depends on framewise: the package is this repository, and its bin is on the PATH.
  mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(ROOT, join(project, 'node_modules', 'framewise'));
  symlinkSync(join(ROOT, 'dist', 'cli', 'main.js'), join(project, 'node_modules', '.bin', 'framewise'));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'docs-examples', private: true, type: 'module' }),
  );
  mkdirSync(join(project, 'blocks'));
  const ts = runnable.filter((b) => b.lang === 'ts');
  ts.forEach((b, i) => writeFileSync(join(project, 'blocks', `b${i}.ts`), `${b.code}\nexport {};\n`));
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        outDir: 'out',
        rootDir: 'blocks',
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      include: ['blocks'],
    }),
  );
  if (ts.length === 0) return;
  // One compiler run for every block; an error is charged to the block whose file it names.
  const tsc = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project],
    { cwd: project, encoding: 'utf8' },
  );
  typeErrors = new Map(
    ts.map((b, i) => [
      b,
      tsc.stdout
        .split('\n')
        .filter((l) => l.startsWith(`blocks/b${i}.ts`))
        .join('\n'),
    ]),
  );
  const unplaced = tsc.stdout.split('\n').filter((l) => /error TS/.test(l) && !l.startsWith('blocks/'));
  if (unplaced.length > 0) throw new Error(`tsc failed outside the blocks:\n${unplaced.join('\n')}`);
}, 120_000);

/** A fresh folder for one block, holding only `samples/`. */
function workDir(b: Block): string {
  const dir = join(project, `work-${b.file.replace(/\W/g, '_')}-${b.line}`);
  mkdirSync(dir);
  symlinkSync(join(ROOT, 'samples'), join(dir, 'samples'));
  return dir;
}

describe('the examples in README.md and docs/', () => {
  it('are found', () => {
    expect(runnable.length).toBeGreaterThan(0);
  });

  for (const b of blocks) {
    if (b.skip) {
      it.skip(`${name(b)} (${b.lang}) is not run: ${b.skip}`, () => {});
      continue;
    }
    it(`${name(b)} (${b.lang}) runs as written`, () => {
      const cwd = workDir(b);
      const env = {
        ...process.env,
        PATH: `${join(project, 'node_modules', '.bin')}:${process.env.PATH}`,
        FRAMEWISE_CACHE: join(root, 'cache'),
        FORCE_COLOR: '0',
      };
      let run;
      if (b.lang === 'ts') {
        expect(typeErrors.get(b), `type errors in ${name(b)}`).toBe('');
        const index = runnable.filter((x) => x.lang === 'ts').indexOf(b);
        run = spawnSync(process.execPath, [join(project, 'out', `b${index}.js`)], {
          cwd,
          env,
          encoding: 'utf8',
          timeout: 110_000,
        });
      } else {
        run = spawnSync('bash', ['-euo', 'pipefail', '-c', b.code], {
          cwd,
          env,
          encoding: 'utf8',
          timeout: 110_000,
        });
      }
      expect(run.status, `${name(b)} exited ${run.status ?? run.signal}:\n${run.stderr.slice(-3000)}`).toBe(
        0,
      );
      // A block that writes records to stdout writes nothing else there: stdout is the data.
      const lines = run.stdout.split('\n').filter(Boolean);
      const record = (line: string): boolean => {
        try {
          return typeof JSON.parse(line)?.path === 'string';
        } catch {
          return false;
        }
      };
      if (lines.some(record))
        expect(
          lines.filter((l) => !record(l)),
          `${name(b)}: stdout mixes records with other text`,
        ).toEqual([]);
    });
  }
});
