import { BayError } from "../../errors.ts";

/**
 * Something answered at the session's endpoint but refused its secret (401) or
 * named another session in /meta: the port now belongs to another container
 * (e.g. after an engine restart). Nothing ran, so the call may go to a fresh session.
 */
export class ShipWrongSessionError extends BayError {
  constructor() {
    super("ship_error", "sandbox runtime is unreachable", { details: { reason: "unreachable" } });
  }
}
