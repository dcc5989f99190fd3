import { BayError } from "../../errors.ts";

/** The Ship did not answer before Bay's deadline for the call. */
export class ShipTimeoutError extends BayError {
  constructor(timeoutMs: number) {
    super("timeout", `sandbox runtime did not answer within ${Math.round(timeoutMs / 1000)}s`, {
      details: { timeout_ms: timeoutMs },
    });
  }
}
