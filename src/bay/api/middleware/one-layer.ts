/**
 * Several middleware as one layer of Hono's chain. Hono runs each layer it composes
 * in an async frame of its own, awaited on the way in and resumed on the way out, for
 * every request; middleware that always run together (the connection's rules, an
 * owner's authentication and rate limit) run here in order inside one frame instead.
 *
 * Only for middleware that call `next` or throw, never answer with a Response of their
 * own: what one of them throws reaches the layer's error handling as it would its own,
 * and only the last may do work after `next` (an error from further down the chain is
 * answered before it gets back here, as between Hono's layers).
 */
import type { MiddlewareHandler } from "hono";

export function oneLayer(...layers: [MiddlewareHandler, ...MiddlewareHandler[]]): MiddlewareHandler {
  return layers.reduceRight((inner, outer) => (c, next) => outer(c, () => inner(c, next) as Promise<void>));
}
