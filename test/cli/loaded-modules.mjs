// Preloaded with `node --import` by test/cli/main.test.ts: at exit, writes every module
// the process loaded (ES module URLs through a resolve hook, CommonJS files from the
// require cache) to the file named by $FRAMEWISE_LOADED_MODULES, one per line.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.FRAMEWISE_LOADED_MODULES;
const hook = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(out)}, result.url + '\\n');
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
const require = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(out, `${Object.keys(require.cache).join('\n')}\n`));
