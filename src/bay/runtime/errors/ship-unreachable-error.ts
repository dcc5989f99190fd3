import { BayError } from "../../errors.ts";

/** The Ship could not be reached (connection refused, reset, DNS). */
export class ShipUnreachableError extends BayError {
  /**
   * True when the connection was refused: the request never reached the Ship,
   * so sending it again elsewhere cannot run anything twice.
   */
  readonly refused: boolean;

  constructor(cause: unknown) {
    const refused = (cause as { code?: string } | null)?.code === "ECONNREFUSED";
    // The endpoint stays out of the details: it is an internal address (it goes to the log).
    super("ship_error", refused ? "sandbox runtime is unreachable" : "the connection to the sandbox runtime was lost during the call", {
      cause,
      details: { reason: refused ? "unreachable" : "connection_lost" },
    });
    this.refused = refused;
  }
}
