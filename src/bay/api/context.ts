/** Typed per-request values set by middleware. */
import type { RequestIdVariables } from "hono/request-id";
import type { Claim } from "../store/idempotency-store.ts";

declare module "hono" {
  interface ContextVariableMap extends RequestIdVariables {
    /** The authenticated owner every read and write is scoped to. */
    owner: string;
    /** The Idempotency-Key claim this request holds, on create routes that sent one. */
    idempotencyClaim?: Claim;
    /** The route label of a request no route of the app matched but middleware answered (sandbox hosts). */
    routeLabel?: string;
  }
}
