/**
 * The folders of src/ import one way, as DESIGN.md draws them. Every import in src/ is parsed
 * (static, re-export and dynamic `import()`), and each one must go down the layers below;
 * a type-only import of a contract may go anywhere. The rules run on the real src/ and, so
 * that a broken rule cannot pass unseen, on small synthetic graphs that break them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '..', 'src');

/**
 * Highest first. A folder imports only folders on lower rows; folders on one row do not
 * import each other. `base` is the files at the top of src/ (errors, validate, fs, log,
 * version), `index` the package entry.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['index'],
  ['output'],
  ['tasks'],
  ['runners'],
  ['engines', 'model', 'evaluation'],
  ['tfjs'],
  ['embedding'],
  ['ingest'],
  ['base'],
];

/** Narrower than the layers: the CLI parses, calls the library and prints. */
const ONLY: Readonly<Record<string, readonly string[]>> = {
  cli: ['index', 'tasks', 'output', 'base:errors', 'base:validate', 'base:version'],
};

/** Engines are entered through their one factory module. */
const ENTRY: Readonly<Record<string, string>> = { engines: 'engines/index.ts' };

/** Folders whose sub-folders are peers: one engine never imports another (what both need is in tfjs/). */
const SEPARATE = ['engines'];

export interface Edge {
  from: string; // file, relative to src/, e.g. 'engines/onnx/model.ts'
  to: string;
  line: number;
}

/** The folder a file belongs to. */
export function folderOf(file: string): string {
  const parts = file.split('/');
  if (parts.length > 1) return parts[0];
  return file === 'index.ts' ? 'index' : 'base';
}

function rank(folder: string): number {
  const i = LAYERS.findIndex((row) => row.includes(folder));
  if (i < 0) throw new Error(`folder '${folder}' is in no layer of the architecture test: add it to LAYERS`);
  return i;
}

/** Every import of ours that breaks the rules, as `from -> to (line): why`. */
export function violations(edges: readonly Edge[]): string[] {
  const out: string[] = [];
  for (const { from, to, line } of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    const where = `${from}:${line} -> ${to}`;
    const [subA, subB] = [from.split('/'), to.split('/')].map((parts) =>
      parts.length > 2 ? parts[1] : undefined,
    );
    if (a === b && SEPARATE.includes(a) && subA && subB && subA !== subB)
      out.push(`${where}: ${a}/${subA} and ${a}/${subB} are separate`);
    if (a === b) continue;
    const only = ONLY[a];
    if (only && !only.includes(b) && !only.includes(`${b}:${path.basename(to, '.ts')}`))
      out.push(`${where}: ${a} uses only ${only.join(', ')}`);
    else if (rank(b) === rank(a)) out.push(`${where}: ${a} and ${b} are peers`);
    else if (rank(b) < rank(a)) out.push(`${where}: runs back up from ${a} to ${b}`);
    else if (ENTRY[b] && to !== ENTRY[b]) out.push(`${where}: ${b} is entered through ${ENTRY[b]}`);
  }
  return out;
}

/** A cycle between folders, as `a -> b -> a`, or undefined. */
export function folderCycle(edges: readonly Edge[]): string | undefined {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a !== b) next.set(a, (next.get(a) ?? new Set()).add(b));
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node].join(' -> ');
    state.set(node, 'open');
    stack.push(node);
    for (const to of next.get(node) ?? []) {
      const found = visit(to);
      if (found) return found;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of next.keys()) {
    const found = visit(node);
    if (found) return found;
  }
  return undefined;
}

/**
 * The import cycles between files, each as its files joined by ` -> ` (a strongly connected
 * component of the run-time import graph, dynamic imports included), sorted.
 */
export function fileCycles(edges: readonly Edge[]): string[] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) if (from !== to) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    for (const to of next.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (stack.includes(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component = stack.splice(stack.indexOf(node));
    if (component.length > 1) cycles.push(component.sort().join(' -> '));
  };
  for (const node of next.keys()) if (!index.has(node)) visit(node);
  return cycles.sort();
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(SRC, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

/** True when a static import or re-export brings in types only (it leaves no import in the JavaScript). */
function typeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) {
    if (node.isTypeOnly) return true;
    const clause = node.exportClause;
    return (
      !!clause &&
      ts.isNamedExports(clause) &&
      clause.elements.length > 0 &&
      clause.elements.every((e) => e.isTypeOnly)
    );
  }
  const clause = node.importClause;
  if (!clause) return false; // a side-effect import
  if (clause.isTypeOnly) return true;
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return (
    !!bindings &&
    ts.isNamedImports(bindings) &&
    bindings.elements.length > 0 &&
    bindings.elements.every((e) => e.isTypeOnly)
  );
}

/** The run-time imports of our own files in src/, parsed with the TypeScript parser. */
export function srcEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of allFiles(SRC)) {
    const text = readFileSync(path.join(SRC, file), 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const add = (specifier: ts.Expression, at: ts.Node): void => {
      if (!ts.isStringLiteralLike(specifier) || !specifier.text.startsWith('.')) return; // a package
      const target = path.posix
        .normalize(path.posix.join(path.posix.dirname(file), specifier.text))
        .replace(/\.js$/, '.ts');
      edges.push({
        from: file,
        to: target,
        line: source.getLineAndCharacterOfPosition(at.getStart()).line + 1,
      });
    };
    const walk = (node: ts.Node): void => {
      if (
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
        node.moduleSpecifier &&
        !typeOnly(node)
      )
        add(node.moduleSpecifier, node);
      else if (
        ts.isImportEqualsDeclaration(node) &&
        ts.isExternalModuleReference(node.moduleReference) &&
        !node.isTypeOnly
      )
        add(node.moduleReference.expression, node);
      else if (
        ts.isCallExpression(node) &&
        node.expression.kind === ts.SyntaxKind.ImportKeyword &&
        node.arguments[0]
      )
        add(node.arguments[0], node);
      // `import('x').T` in a type position is an ImportTypeNode: a type, not an import.
      ts.forEachChild(node, walk);
    };
    walk(source);
  }
  return edges;
}

const e = (from: string, to: string): Edge => ({ from, to, line: 1 });

describe('the folder imports of src/', () => {
  const edges = srcEdges();

  it('finds the imports it checks: static, re-exported and dynamic, each resolved to a file that exists', () => {
    const files = new Set(allFiles(SRC));
    expect(edges.length).toBeGreaterThan(200);
    expect(edges.filter((edge) => !files.has(edge.to))).toEqual([]);
    // A dynamic import and a re-export that the rules must see.
    expect(edges).toContainEqual(
      expect.objectContaining({ from: 'runners/index.ts', to: 'runners/worker.ts' }),
    );
    expect(edges).toContainEqual(expect.objectContaining({ from: 'index.ts', to: 'tasks/embed.ts' }));
    // Every folder of src/ has its row.
    for (const file of files) expect(() => rank(folderOf(file))).not.toThrow();
  });

  it('go down the layers only, the CLI through index, tasks and output', () => {
    expect(violations(edges)).toEqual([]);
  });

  it('have no cycle between folders', () => {
    expect(folderCycle(edges)).toBeUndefined();
  });

  it('have no cycle between files', () => {
    expect(fileCycles(edges)).toEqual([]);
  });
});

describe('the architecture rules on graphs that break them', () => {
  it.each<[string, Edge[], RegExp]>([
    [
      'model importing the engines (peers)',
      [e('model/train.ts', 'engines/index.ts')],
      /model and engines are peers/,
    ],
    [
      'the tfjs layer importing the model',
      [e('tfjs/registry.ts', 'model/heads.ts')],
      /runs back up from tfjs to model/,
    ],
    [
      'a runner importing the task options',
      [e('runners/worker.ts', 'tasks/options.ts')],
      /runs back up from runners to tasks/,
    ],
    [
      'the embedding contracts importing an engine',
      [e('embedding/local-runner.ts', 'engines/index.ts')],
      /runs back up from embedding to engines/,
    ],
    [
      'the CLI importing a runner',
      [e('cli/worker.ts', 'runners/worker.ts')],
      /cli uses only index, tasks, output/,
    ],
    ['the CLI importing fs', [e('cli/embed.ts', 'fs.ts')], /cli uses only/],
    [
      'a base file importing a folder',
      [e('fs.ts', 'embedding/cache.ts')],
      /runs back up from base to embedding/,
    ],
    [
      'a task importing an engine file past its factory',
      [e('tasks/embed.ts', 'engines/onnx/model.ts')],
      /engines is entered through engines\/index\.ts/,
    ],
    [
      'the onnx engine importing the tfjs engine',
      [e('engines/onnx/model.ts', 'engines/tfjs/registry.ts')],
      /engines\/onnx and engines\/tfjs are separate/,
    ],
  ])('rejects %s', (_, edges, message) => {
    const found = violations(edges);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  it.each<[string, Edge[]]>([
    [
      'a task using the model, an engine factory, a runner and ingest',
      [
        e('tasks/train.ts', 'model/train.ts'),
        e('tasks/embed.ts', 'engines/index.ts'),
        e('tasks/embed.ts', 'runners/local.ts'),
        e('tasks/inputs.ts', 'ingest/discover.ts'),
      ],
    ],
    [
      'the CLI using the entry, tasks, output and errors',
      [
        e('cli/eval.ts', 'index.ts'),
        e('cli/embed.ts', 'tasks/index.ts'),
        e('cli/embed.ts', 'output/sinks.ts'),
        e('cli/util.ts', 'errors.ts'),
      ],
    ],
    [
      'files of one folder importing each other',
      [
        e('engines/onnx/model.ts', 'engines/onnx/runtime.ts'),
        e('engines/index.ts', 'engines/onnx/embedder.ts'),
      ],
    ],
  ])('accepts %s', (_, edges) => {
    expect(violations(edges)).toEqual([]);
  });

  it('finds a cycle between folders, and none in a graph that only goes down', () => {
    expect(
      folderCycle([e('tasks/options.ts', 'runners/protocol.ts'), e('runners/worker.ts', 'tasks/options.ts')]),
    ).toBe('tasks -> runners -> tasks');
    expect(
      folderCycle([
        e('model/a.ts', 'tfjs/b.ts'),
        e('tfjs/b.ts', 'embedding/c.ts'),
        e('model/a.ts', 'embedding/c.ts'),
      ]),
    ).toBeUndefined();
  });

  it('finds a cycle between files, through a dynamic import too, and none in a graph that only goes down', () => {
    expect(
      fileCycles([
        e('ingest/probe.ts', 'ingest/decoders.ts'),
        e('ingest/decoders.ts', 'ingest/decoders/libav.ts'),
        e('ingest/decoders/libav.ts', 'ingest/probe.ts'),
        e('ingest/extract.ts', 'ingest/clips.ts'),
      ]),
    ).toEqual(['ingest/decoders.ts -> ingest/decoders/libav.ts -> ingest/probe.ts']);
    expect(fileCycles([e('a.ts', 'b.ts'), e('b.ts', 'c.ts'), e('a.ts', 'c.ts')])).toEqual([]);
  });

  it('does not count a type-only import of a contract', () => {
    // output/records.ts reads the task results' types; the JavaScript imports nothing there.
    expect(
      srcEdges().filter((edge) => edge.from === 'output/records.ts' && folderOf(edge.to) === 'tasks'),
    ).toEqual([]);
  });
});

/** The extension points, each a table owned by its folder (DESIGN.md): module -> export. */
const REGISTRIES: Readonly<Record<string, string>> = {
  'ingest/sampling.ts': 'SAMPLERS',
  'ingest/decoders.ts': 'DECODERS',
  'engines/index.ts': 'ENGINES',
  'tfjs/backends.ts': 'BACKENDS',
  'model/heads/registry.ts': 'HEADS',
  'output/formats.ts': 'OUTPUT_FORMATS',
  'runners/registry.ts': 'RUNNERS',
};

/**
 * Closed lists of values read with `Object.keys`, which are not extension points: the fits,
 * and the backbones' weights table (its entries have no help or factory).
 */
const CLOSED_LISTS = ['FITS', 'BACKBONES'];

/**
 * Tables written by hand past the one `Registry` type, as `file:line: why`: an exported
 * UPPER_CASE const that is an object of entries (`{ libav, cli }`, or entries with a `help`),
 * and a names list read off an UPPER_CASE table (`Object.keys(ENGINES)`).
 */
export function handRolledTables(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const at = (node: ts.Node): string =>
    `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  const unwrap = (node: ts.Expression): ts.Expression =>
    ts.isSatisfiesExpression(node) || ts.isAsExpression(node) || ts.isParenthesizedExpression(node)
      ? unwrap(node.expression)
      : node;
  const isEntry = (p: ts.ObjectLiteralElementLike): boolean =>
    ts.isShorthandPropertyAssignment(p) ||
    (ts.isPropertyAssignment(p) &&
      (ts.isIdentifier(p.initializer) ||
        (ts.isObjectLiteralExpression(p.initializer) &&
          p.initializer.properties.some((q) => q.name?.getText(source) === 'help'))));
  const walk = (node: ts.Node): void => {
    if (
      ts.isVariableDeclaration(node) &&
      ts.isVariableStatement(node.parent.parent) &&
      node.parent.parent.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) &&
      ts.isIdentifier(node.name) &&
      /^[A-Z][A-Z0-9_]+$/.test(node.name.text)
    ) {
      const init = node.initializer && unwrap(node.initializer);
      if (
        init &&
        ts.isObjectLiteralExpression(init) &&
        init.properties.length > 0 &&
        init.properties.every(isEntry)
      )
        out.push(`${at(node)}: ${node.name.text} is a table of entries: make it a Registry`);
    }
    if (
      ts.isCallExpression(node) &&
      /^Object\.(keys|entries|values)$/.test(node.expression.getText(source)) &&
      node.arguments[0] &&
      ts.isIdentifier(node.arguments[0]) &&
      /^[A-Z][A-Z0-9_]+$/.test(node.arguments[0].text) &&
      !CLOSED_LISTS.includes(node.arguments[0].text)
    )
      out.push(`${at(node)}: names read off ${node.arguments[0].text} by hand: use its Registry`);
    ts.forEachChild(node, walk);
  };
  walk(source);
  return out;
}

describe('the extension points', () => {
  it.each(Object.entries(REGISTRIES))('%s exports %s as a Registry', async (file, name) => {
    const { Registry } = await import('../src/registry.js');
    const module = (await import(`../src/${file.replace(/\.ts$/, '.js')}`)) as Record<string, unknown>;
    expect(module[name]).toBeInstanceOf(Registry);
  });

  it('are every Registry in src/, and no table or names list is written by hand', () => {
    const registries: string[] = [];
    const found: string[] = [];
    for (const file of allFiles(SRC)) {
      const text = readFileSync(path.join(SRC, file), 'utf8');
      for (const m of text.matchAll(/^export const ([A-Z_]+)\s*=\s*new Registry\b/gm))
        registries.push(`${file}:${m[1]}`);
      found.push(...handRolledTables(file, text));
    }
    expect(registries.sort()).toEqual(
      Object.entries(REGISTRIES)
        .map(([file, name]) => `${file}:${name}`)
        .sort(),
    );
    expect(found).toEqual([]);
  });

  it.each([
    ['export const DECODERS = { libav, cli };', /DECODERS is a table of entries/],
    [
      "export const HEADS = { lstm, mean: { help: 'x', build } } satisfies Record<string, HeadEntry>;",
      /HEADS is a table of entries/,
    ],
    ["const names = ['auto', ...Object.keys(ENGINES)];", /names read off ENGINES by hand/],
  ])('finds a hand-rolled table: %s', (text, message) => {
    const found = handRolledTables('x.ts', text);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });
});
