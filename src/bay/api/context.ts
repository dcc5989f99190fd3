/** Typed per-request values set by middleware. */
import type { RequestIdVariables } from "hono/request-id";

declare module "hono" {
  interface ContextVariableMap extends RequestIdVariables {
    /** The authenticated owner every read and write is scoped to. */
    owner: string;
  }
}
