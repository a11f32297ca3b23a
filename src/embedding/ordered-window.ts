/**
 * `orderedWindow()`: the loop both runners share. It keeps a window of items in flight, waits
 * for the one at the head, and yields `[item, result]` in input order, whatever order the work
 * settles in. What differs between runners (how work starts, what bounds it, how a result is
 * read, what cleaning up means) comes in as hooks.
 *
 * On abort it yields nothing more and throws `signal.reason` at its next step: a caller that
 * aborts inside its `for await` gets no further result. Work that finished but was not given
 * out is not lost where it matters: the local runner stored it in the embedding cache, and a
 * remote run's results wait in Redis for `--resume`. Whatever way it ends (done, abort, an
 * error, a consumer that stopped early with `return()`), `cleanup` runs last with the work
 * whose results were not given out.
 */

/** What a runner supplies: `I` an item, `W` the handle of its work, `O` a result. */
export interface WindowHooks<I, W, O> {
  /** Stops the window: it yields nothing more, and throws the signal's reason. */
  readonly signal?: AbortSignal;
  /** Before the first item, inside the window's `try`, so `cleanup` runs if it fails. */
  open?(): Promise<void>;
  /** The most items in flight; read before each start, so it may change during the run. */
  size(): number;
  /** Resolves when the next item may start: backpressure besides the window's size. */
  admit?(): Promise<void>;
  /** Starts the work of one item. */
  start(item: I): W | Promise<W>;
  /** Resolves once `work` has settled, or promptly once the signal aborts (it may throw: the run ends). */
  settled(work: W): Promise<unknown>;
  /** The result of the settled head, taken in input order; throwing ends the run. */
  take(work: W): O;
  /** After the consumer has taken `work`'s result (it came back from the `yield`). */
  taken?(work: W): void;
  /** Last, always: `rest` is the work whose results were not given out; `done` is false after an abort, an error or an early stop. */
  cleanup?(rest: readonly W[], done: boolean): Promise<void> | void;
}

/** Yields `[item, result]` for `items` in order, with at most `hooks.size()` of them in flight. */
export async function* orderedWindow<I, W, O>(
  items: Iterable<I>,
  hooks: WindowHooks<I, W, O>,
): AsyncGenerator<[I, O]> {
  const { signal } = hooks;
  const window: Array<{ item: I; work: W }> = [];
  let done = false;
  try {
    await hooks.open?.();
    const iterator = items[Symbol.iterator]();
    let next = iterator.next();
    while (!next.done || window.length > 0) {
      while (!next.done && window.length < hooks.size() && !signal?.aborted) {
        await hooks.admit?.();
        window.push({ item: next.value, work: await hooks.start(next.value) });
        next = iterator.next();
      }
      // Aborted (while the consumer held the last result, or while waiting): no further result.
      signal?.throwIfAborted();
      const head = window[0];
      await hooks.settled(head.work);
      signal?.throwIfAborted();
      window.shift();
      yield [head.item, hooks.take(head.work)];
      hooks.taken?.(head.work);
    }
    signal?.throwIfAborted();
    done = true;
  } finally {
    await hooks.cleanup?.(
      window.map((w) => w.work),
      done,
    );
  }
}
