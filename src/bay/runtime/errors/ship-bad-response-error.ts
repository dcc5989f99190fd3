import { BayError } from "../../errors.ts";

/** The Ship answered, but with something Bay cannot use (5xx, garbage, wrong meta). */
export class ShipBadResponseError extends BayError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("ship_error", message, { details: { reason: "bad_response", ...details } });
  }
}
