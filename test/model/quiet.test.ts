/**
 * The library never prints: training a head in a fresh process (where tfjs's cpu backend
 * would greet Node users on first use) writes nothing to stdout or stderr.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';

describe('trainHead()', () => {
  it('prints nothing, not even tfjs\'s greeting', () => {
    const script = `
      import { trainHead } from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
      const emb = new Float32Array(4 * 3 * 8).map((_, i) => Math.sin(i));
      const head = await trainHead({ embeddings: emb, shape: [4, 3, 8], labels: ['a', 'b', 'a', 'b'] }, { head: { type: 'lstm' }, epochs: 2 });
      head.dispose();`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).toBe('');
  });
});
