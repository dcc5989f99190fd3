/**
 * The JS kernel's promise plumbing, written with `await` only. A cell runs in the
 * kernel's realm and may replace `Promise.prototype.then`, `Promise.resolve`,
 * `Promise.race` or `Promise[Symbol.species]`: explicit `.then` calls and the statics go
 * through those, but `await` of a native promise does not (the language adopts it
 * directly), so none of them can stop a cell from being answered. What `await` cannot
 * step around is `Object.prototype.then`, which makes every object a thenable: the
 * kernel exits on it (health.ts, thenTrap).
 */
import { KernelPromise } from "./intrinsics.ts";

/** How a promise settled, never rejecting. */
export type Settled<T> = { kind: "ok"; value: T } | { kind: "error"; error: unknown };

export async function settle<T>(p: PromiseLike<T> | T): Promise<Settled<T>> {
  try {
    return { kind: "ok", value: await p };
  } catch (error) {
    return { kind: "error", error };
  }
}

/** The first of two promises to settle, as Promise.race but through `await`. */
export function firstOf<A, B>(a: PromiseLike<A>, b: PromiseLike<B>): Promise<A | B> {
  return new KernelPromise<A | B>((resolve, reject) => {
    const take = async (p: PromiseLike<A | B>) => {
      try {
        resolve(await p);
      } catch (error) {
        reject(error);
      }
    };
    void take(a);
    void take(b);
  });
}

/** `fn` of what `p` fulfils with, as `p.then(fn)` but through `await`. */
export async function thenOf<T, R>(p: PromiseLike<T>, fn: (value: T) => R): Promise<Awaited<R>> {
  return await fn(await p);
}
