#!/usr/bin/env node
/**
 * Lists the long functions of a source tree: every function, method, constructor, accessor
 * and arrow whose text (from its first token to its closing brace, comments inside it
 * included) spans more than `--over` lines, longest first. A function counts its nested
 * functions too, since they are part of what a reader has to hold.
 *
 *   node scripts/function-lengths.mjs [--over 60] [--json] [DIR]   (DIR defaults to src)
 *
 * Prints `file:line  lines  name`, or with --json an array of { file, line, lines, name }.
 * Exits 0 whatever it finds: test/scripts/function-lengths.test.ts holds the limit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ts from 'typescript';

/** The .ts files below `dir`, sorted, declaration files left out. */
function sourceFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** The name a reader would search for: `Class.method`, the variable or property an arrow is bound to. */
function nameOf(node) {
  const own = node.name && ts.isIdentifier(node.name) ? node.name.text : node.name?.getText();
  if (ts.isConstructorDeclaration(node)) return `${className(node)}.constructor`;
  if (ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) {
    const owner = className(node);
    return owner ? `${owner}.${own}` : own;
  }
  if (own) return own;
  const parent = node.parent;
  if (
    ts.isVariableDeclaration(parent) ||
    ts.isPropertyAssignment(parent) ||
    ts.isPropertyDeclaration(parent)
  ) {
    return parent.name.getText();
  }
  if (ts.isCallExpression(parent) || ts.isNewExpression(parent)) {
    const callee = parent.expression.getText().slice(0, 40);
    return `(callback of ${ts.isNewExpression(parent) ? 'new ' : ''}${callee})`;
  }
  return '(anonymous)';
}

function className(node) {
  const owner = node.parent;
  return owner && (ts.isClassDeclaration(owner) || ts.isClassExpression(owner))
    ? (owner.name?.text ?? '(class)')
    : '';
}

function isFunction(node) {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isFunctionExpression(node) ||
    ts.isArrowFunction(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessor(node) ||
    ts.isSetAccessor(node)
  );
}

/** Every function of one file's text that spans more than `over` lines. */
export function longFunctionsIn(file, text, over) {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (isFunction(node) && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > over) found.push({ file, line: first + 1, lines, name: nameOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Every function below `dir` longer than `over` lines, longest first; `file` is relative to `base`. */
export function longFunctions(dir, over, base = process.cwd()) {
  return sourceFiles(dir)
    .flatMap((file) => longFunctionsIn(path.relative(base, file), readFileSync(file, 'utf8'), over))
    .sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    options: { over: { type: 'string', default: '60' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const over = Number(values.over);
  if (!Number.isInteger(over) || over < 0)
    throw new TypeError(`Expected a whole number for --over but received ${values.over}`);
  const found = longFunctions(path.resolve(positionals[0] ?? 'src'), over);
  if (values.json) console.log(JSON.stringify(found, null, 2));
  else
    for (const f of found)
      console.log(`${`${f.file}:${f.line}`.padEnd(44)} ${String(f.lines).padStart(4)}  ${f.name}`);
}
