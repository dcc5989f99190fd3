import { BayError } from "../../errors.ts";

/**
 * Something answered at the session's endpoint but refused its secret (401), named
 * another session in /meta, or answered without the session's proof: the port now
 * belongs to another container or process (e.g. after an engine restart). Nothing
 * ran in the sandbox, so the call may go to a fresh session.
 */
export class ShipWrongSessionError extends BayError {
  /** `answerStatus`: the HTTP status of an answer that came without the session's proof, if that was the sign. */
  constructor(readonly answerStatus: number | null = null) {
    super("ship_error", "sandbox runtime is unreachable", { details: { reason: "unreachable" } });
  }
}
