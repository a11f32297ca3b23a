/**
 * `orderedWindow()` on work whose settling the test controls: results in input order whatever
 * order the work settles in, the window's bound, abort (no further result, then the reason),
 * and cleanup whatever way the run ends.
 */
import { describe, expect, it } from 'vitest';
import { orderedWindow, type WindowHooks } from '../../src/embedding/ordered-window.js';

/** One item's work: settled by the test with `settle()`. */
interface Work {
  item: number;
  promise: Promise<void>;
  settle: () => void;
  result?: string;
}

/** Hooks over numbers, with a log of what happened, and the work started so far. */
function hooks(
  size: () => number,
  more: Partial<WindowHooks<number, Work, string>> = {},
  signal?: AbortSignal,
) {
  const log: string[] = [];
  const started: Work[] = [];
  let cleanedUp: { rest: number[]; done: boolean } | undefined;
  const h: WindowHooks<number, Work, string> = {
    signal,
    size,
    start(item) {
      let settle!: () => void;
      const work: Work = {
        item,
        promise: new Promise<void>((resolve) => (settle = resolve)),
        settle: () => undefined,
      };
      work.settle = () => {
        work.result = `r${item}`;
        log.push(`settled ${item}`);
        settle();
      };
      started.push(work);
      log.push(`start ${item}`);
      return work;
    },
    settled: (work) => work.promise,
    take: (work) => work.result!,
    taken: (work) => log.push(`taken ${work.item}`),
    cleanup(rest, done) {
      cleanedUp = { rest: rest.map((w) => w.item), done };
    },
    ...more,
  };
  return { hooks: h, log, started, cleanup: () => cleanedUp };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('orderedWindow()', () => {
  it('yields in input order when the work settles in reverse order', async () => {
    const { hooks: h, started, cleanup } = hooks(() => 10);
    const run = orderedWindow([0, 1, 2, 3, 4], h);
    const first = run.next();
    await tick();
    expect(started.map((w) => w.item)).toEqual([0, 1, 2, 3, 4]);
    for (const work of [...started].reverse()) work.settle();
    const out = [(await first).value];
    for await (const pair of run) out.push(pair);
    expect(out).toEqual([0, 1, 2, 3, 4].map((i) => [i, `r${i}`]));
    expect(cleanup()).toEqual({ rest: [], done: true });
  });

  it('has at most size() items in flight, reads size() again as it goes, and waits for admit()', async () => {
    let size = 2;
    let admitted = 0;
    const { hooks: h, started } = hooks(() => size, {
      admit: async () => {
        admitted += 1;
      },
    });
    const run = orderedWindow([0, 1, 2, 3, 4, 5, 6], h);
    const next = run.next();
    await tick();
    expect(started).toHaveLength(2);
    expect(admitted).toBe(2);
    started[1].settle(); // not the head: nothing moves
    await tick();
    expect(started).toHaveLength(2);
    started[0].settle();
    expect((await next).value).toEqual([0, 'r0']);
    // The head left the window: one more may start, when the consumer asks for the next result.
    size = 4;
    const later = run.next();
    await tick();
    // 1 was settled, so it comes out at once, before the window is filled again.
    expect((await later).value).toEqual([1, 'r1']);
    const third = run.next();
    await tick();
    expect(started.map((w) => w.item)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const work of started.slice(2)) work.settle();
    expect((await third).value).toEqual([2, 'r2']);
    await run.return(undefined);
  });

  it('aborted while waiting for the head: no further result, though later work finished; throws the reason', async () => {
    const controller = new AbortController();
    const aborted = new Promise<void>((resolve) =>
      controller.signal.addEventListener('abort', () => resolve()),
    );
    const {
      hooks: h,
      started,
      log,
      cleanup,
    } = hooks(() => 10, { settled: (work) => Promise.race([work.promise, aborted]) }, controller.signal);
    const run = orderedWindow([0, 1, 2, 3, 4], h);
    const first = run.next();
    await tick();
    started[0].settle();
    expect((await first).value).toEqual([0, 'r0']);
    started[4].settle();
    started[3].settle();
    started[2].settle();
    const second = run.next();
    await tick();
    // The head (1) is still running when the signal aborts.
    const reason = new DOMException('stop', 'AbortError');
    controller.abort(reason);
    await expect(second).rejects.toBe(reason);
    expect(log.filter((line) => line.startsWith('taken'))).toEqual(['taken 0']);
    expect(cleanup()).toEqual({ rest: [1, 2, 3, 4], done: false });
  });

  it("aborted inside the consumer's loop body: the next step throws the reason, though the rest had finished", async () => {
    const controller = new AbortController();
    const { hooks: h, started, log, cleanup } = hooks(() => 10, {}, controller.signal);
    const run = orderedWindow([0, 1, 2, 3, 4], h);
    const first = run.next();
    await tick();
    for (const work of started) work.settle();
    expect((await first).value).toEqual([0, 'r0']);
    const reason = new DOMException('stop', 'AbortError');
    controller.abort(reason);
    await expect(run.next()).rejects.toBe(reason);
    expect(log.filter((line) => line.startsWith('taken'))).toEqual(['taken 0']);
    expect(cleanup()).toEqual({ rest: [1, 2, 3, 4], done: false });
  });

  it('aborted before it starts anything: throws the reason, starts nothing', async () => {
    const controller = new AbortController();
    controller.abort(new Error('early'));
    const { hooks: h, started, cleanup } = hooks(() => 2, {}, controller.signal);
    await expect(orderedWindow([0, 1], h).next()).rejects.toThrow('early');
    expect(started).toHaveLength(0);
    expect(cleanup()).toEqual({ rest: [], done: false });
  });

  it('runs cleanup when the consumer stops early with return()', async () => {
    const { hooks: h, started, cleanup } = hooks(() => 3);
    const run = orderedWindow([0, 1, 2, 3, 4], h);
    const first = run.next();
    await tick();
    started[0].settle();
    expect((await first).value).toEqual([0, 'r0']);
    expect(cleanup()).toBeUndefined();
    await run.return(undefined);
    expect(cleanup()).toEqual({ rest: [1, 2], done: false });
    expect(started).toHaveLength(3);
  });

  it('ends with the error when take() throws, and cleans up', async () => {
    const {
      hooks: h,
      started,
      cleanup,
    } = hooks(() => 2, {
      take: () => {
        throw new Error('refused');
      },
    });
    const run = orderedWindow([0, 1, 2], h);
    const first = run.next();
    await tick();
    started[0].settle();
    await expect(first).rejects.toThrow('refused');
    expect(cleanup()).toEqual({ rest: [1], done: false });
  });
});
