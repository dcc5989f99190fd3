/**
 * Running an envd Connect call on Bay: authorize it from its headers (sandbox id
 * and access token, Basic user), run it as the sandbox's owner, and turn every
 * failure into the Connect error an E2B SDK maps to its own error classes.
 */
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "../../logger.ts";
import { toConnectError } from "./connect-errors.ts";
import type { DataPlaneAccess, DataPlaneCall } from "./access.ts";
import { REQUEST_ID_HEADER } from "./request-id.ts";

export class EnvdCalls {
  constructor(
    private readonly access: DataPlaneAccess,
    private readonly logger: Logger,
  ) {}

  /** The call's context; its door (e2b/index.ts) authorized it and charged the rate limit before the body was read. */
  authorize(ctx: HandlerContext): Promise<DataPlaneCall> {
    const h = ctx.requestHeader;
    return this.access.authorize(
      {
        sandboxId: h.get("e2b-sandbox-id") ?? undefined,
        accessToken: h.get("x-access-token") ?? undefined,
        authorization: h.get("authorization") ?? undefined,
        requestId: h.get(REQUEST_ID_HEADER) ?? "",
        signal: ctx.signal,
      },
      ["envd"],
      true,
    );
  }

  async unary<T>(ctx: HandlerContext, run: (call: DataPlaneCall) => Promise<T>): Promise<T> {
    try {
      return await run(await this.authorize(ctx));
    } catch (e) {
      throw this.failure(ctx, e);
    }
  }

  /** A server stream: authorized before its first message; failures end it with a Connect error. */
  async *stream<T>(ctx: HandlerContext, run: (call: DataPlaneCall) => AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* run(await this.authorize(ctx));
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
