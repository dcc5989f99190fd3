/**
 * Running an envd Connect call on Bay: as the call its door authorized (sandbox id and
 * access token, Basic user: e2b/index.ts, before the body was read), as the sandbox's
 * owner, and every failure turned into the Connect error an E2B SDK maps to its own
 * error classes.
 */
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import { BayError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import { toConnectError } from "./connect-errors.ts";
import type { DataPlaneCall } from "./access.ts";

/** The call the door authorized, handed to the service in the Connect context (rpc.ts), not authorized twice. */
export const DOOR_CALL = createContextKey<DataPlaneCall | null>(null, { description: "the envd call its door authorized" });

export class EnvdCalls {
  constructor(private readonly logger: Logger) {}

  /** The door's call, cut by the call's own signal (its deadline, the client going away). */
  private authorized(ctx: HandlerContext): DataPlaneCall {
    const call = ctx.values.get(DOOR_CALL);
    if (!call) throw new BayError("unauthorized", "missing or wrong sandbox access token");
    return { ...call, signal: ctx.signal };
  }

  async unary<T>(ctx: HandlerContext, run: (call: DataPlaneCall) => Promise<T>): Promise<T> {
    try {
      return await run(this.authorized(ctx));
    } catch (e) {
      throw this.failure(ctx, e);
    }
  }

  /** A server stream: authorized before its first message; failures end it with a Connect error. */
  async *stream<T>(ctx: HandlerContext, run: (call: DataPlaneCall) => AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* run(this.authorized(ctx));
    } catch (e) {
      throw this.failure(ctx, e);
    }
  }

  /**
   * A call whose deadline (Connect-Timeout-Ms) passed fails with that deadline's own
   * deadline_exceeded, whatever the work it cut reported on its way out (a lost
   * stream, a client gone); any other failure as Bay's error maps it.
   */
  private failure(ctx: HandlerContext, e: unknown): ConnectError {
    const reason = ctx.signal.aborted ? ConnectError.from(ctx.signal.reason) : null;
    if (reason?.code === Code.DeadlineExceeded) return reason;
    return toConnectError(e, this.logger);
  }
}
