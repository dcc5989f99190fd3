/**
 * Ids that tools put in a /v1 path segment. Bay's ids (and Ship's context ids)
 * are letters, digits, '-' and '_'; anything else ('.', '..', '/', '%', spaces)
 * is refused by the tool's schema and never becomes a path, where '.' and '..'
 * would be dot segments of the in-process call.
 */
import { z } from "zod";

const idSegment = (what: string) =>
  z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_-]+$/, `a ${what} id is letters, digits, '-' and '_'`);

export const sandboxId = idSegment("sandbox").describe("Sandbox id (sandbox-…).");
export const contextId = idSegment("context").describe("Context id (ctx-…).");
