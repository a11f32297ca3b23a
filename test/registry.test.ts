/** Registry: the one table type behind every extension point (names, lookup, help, default, auto). */
import { describe, expect, it } from 'vitest';
import { Registry } from '../src/registry.js';

const table = () =>
  new Registry('widget', {
    a: { help: 'the first', ok: false },
    b: { help: 'the second', ok: true },
    c: { help: 'the third', ok: true },
  });

describe('Registry', () => {
  it('keeps the names in order, the first as the default, and gives the help line', () => {
    const r = table();
    expect(r.names()).toEqual(['a', 'b', 'c']);
    expect(r.requests()).toEqual(['auto', 'a', 'b', 'c']);
    expect(r.default).toBe('a');
    expect(r.help()).toBe('a (the first) | b (the second) | c (the third)');
    expect(r.help(['c', 'a'])).toBe('c (the third) | a (the first)');
  });

  it('looks a name up, or throws a usage error that names the field and lists the names', () => {
    const r = table();
    expect(r.get('b').help).toBe('the second');
    expect(r.check('w', 'c')).toBe('c');
    expect(r.check('w', 'auto', { auto: true })).toBe('auto');
    for (const [value, list] of [
      ['auto', "'a', 'b', 'c'"],
      ['d', "'a', 'b', 'c'"],
    ] as const)
      expect(() => r.check('opts.w', value)).toThrow(
        new RegExp(`^Expected one of ${list} for \`opts.w\` but received '${value}'$`),
      );
    expect(() => r.get('d')).toThrow(expect.objectContaining({ name: 'TypeError', code: 'USAGE' }));
  });

  it('registers one more at the end, refuses a name taken, and unregisters', () => {
    const r = table();
    r.register('d', { help: 'the fourth', ok: true });
    expect(r.names()).toEqual(['a', 'b', 'c', 'd']);
    expect(() => r.register('a', { help: 'x', ok: true })).toThrow(
      /A widget named 'a' is registered already/,
    );
    expect(r.unregister('d')).toBe(true);
    expect(r.has('d')).toBe(false);
  });

  it('firstThatLoads: the first that opens, told the refusals before it in one form', async () => {
    const r = table();
    const open = async (name: string, entry: { ok: boolean }, refused: string | undefined) => {
      if (!entry.ok) throw new Error(`${name} is off\nstack`);
      return `${name}${refused ? ` because ${refused}` : ''}`;
    };
    expect(await r.firstThatLoads(open)).toBe('b because a was refused (a is off)');
    expect(await r.firstThatLoads(open, { names: ['c'] })).toBe('c');
    // All refused: `none` builds the error from the refusals, else the last one's own error is the answer.
    const off = async (name: string) => {
      throw Object.assign(new Error('x'), { reason: `${name} cannot` });
    };
    await expect(r.firstThatLoads(off, { none: (why) => new Error(`none: ${why}`) })).rejects.toThrow(
      'none: a was refused (a cannot); b was refused (b cannot); c was refused (c cannot)',
    );
    await expect(r.firstThatLoads(off)).rejects.toMatchObject({ reason: 'c cannot' });
    // A fatal error ends the search at once.
    const stop = new Error('stop');
    await expect(r.firstThatLoads(() => Promise.reject(stop), { fatal: (e) => e === stop })).rejects.toBe(
      stop,
    );
  });
});
