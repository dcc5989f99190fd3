/**
 * The request a piece of work belongs to, carried by AsyncLocalStorage so that
 * every log line written while serving it (in middleware, a manager, a store)
 * names its request id without any function passing it along. Work started by
 * a request and awaited by another (a shared session start) keeps the id of
 * the request that started it; background work (reaper, reconcile) has none.
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** What is known about the request being served; fields fill in as middleware learns them. */
export interface RequestContext {
  requestId: string;
  /** Set by authentication. */
  owner?: string;
  /** The id of an enclosing request when this one was made in-process (MCP tools call Bay's own routes). */
  parentRequestId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` as part of the request `ctx`. */
export function runInRequest<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** Runs `fn` outside any request (what it logs names none). */
export function outsideRequest<T>(fn: () => T): T {
  return storage.exit(fn);
}

/** The request being served, if any. */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}
