import { BayError } from "../../errors.ts";

/** The Ship could not be reached (connection refused, reset, DNS). */
export class ShipUnreachableError extends BayError {
  constructor(baseUrl: string, cause: unknown) {
    super("ship_error", "sandbox runtime is unreachable", { cause, details: { reason: "unreachable", endpoint: baseUrl } });
  }
}
