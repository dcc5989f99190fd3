/**
 * A ShipClient that counts its transport failures and unusable answers in
 * `bay_ship_errors_total`. Error bodies the Ship passes through on purpose
 * (file_not_found, invalid_path, …) are the caller's errors, not the Ship's,
 * and are not counted; neither is a call the client abandoned, nor the failure
 * of a server in the sandbox that Ship relays (`upstream_error`: user code's, not
 * the runtime's). Health probes
 * (isHealthy) are not counted either: a Ship still booting refuses them by design.
 */
import type { Meta, ShipOperationId } from "../../protocol/ship/index.ts";
import type { BayError } from "../errors.ts";
import { ShipBadResponseError } from "../runtime/errors/ship-bad-response-error.ts";
import type { ShipChannels } from "../runtime/ship-channel.ts";
import { ShipTimeoutError } from "../runtime/errors/ship-timeout-error.ts";
import { ShipUnreachableError } from "../runtime/errors/ship-unreachable-error.ts";
import { ShipWrongSessionError } from "../runtime/errors/ship-wrong-session-error.ts";
import { type CallOptions, type Send, ShipClient, type ShipReply, type ShipTarget } from "../runtime/ship-client.ts";
import type { BayMetrics } from "./bay-metrics.ts";

export class MeteredShipClient extends ShipClient {
  /** Errors already counted, so one that passes through meta() after send() counts once. */
  private readonly counted = new WeakSet<object>();

  constructor(
    private readonly metrics: Pick<BayMetrics, "shipError">,
    fetchImpl: typeof fetch = fetch,
    channels: ShipChannels | null = null,
  ) {
    super(fetchImpl, channels);
  }

  protected override async send<T>(t: ShipTarget, op: ShipOperationId, s: Send, o: CallOptions): Promise<ShipReply<T>> {
    try {
      return await super.send<T>(t, op, s, o);
    } catch (e) {
      throw this.count(e);
    }
  }

  override async meta(t: ShipTarget, o?: CallOptions): Promise<Meta> {
    try {
      return await super.meta(t, o);
    } catch (e) {
      throw this.count(e);
    }
  }

  override async attachTerminal(...args: Parameters<ShipClient["attachTerminal"]>): ReturnType<ShipClient["attachTerminal"]> {
    try {
      return await super.attachTerminal(...args);
    } catch (e) {
      throw this.count(e);
    }
  }

  override async portSocket(...args: Parameters<ShipClient["portSocket"]>): ReturnType<ShipClient["portSocket"]> {
    try {
      return await super.portSocket(...args);
    } catch (e) {
      throw this.count(e);
    }
  }

  protected override streamFailed(e: BayError): void {
    this.count(e);
  }

  private count(e: unknown): unknown {
    if (typeof e !== "object" || e === null || this.counted.has(e)) return e;
    if (e instanceof ShipWrongSessionError) this.metrics.shipError("wrong_session");
    else if (e instanceof ShipUnreachableError) this.metrics.shipError(e.refused ? "unreachable" : "connection_lost");
    else if (e instanceof ShipTimeoutError) this.metrics.shipError("timeout");
    else if (e instanceof ShipBadResponseError) {
      if (e.details.ship_code === "upstream_error") return e;
      this.metrics.shipError("bad_response");
    } else return e;
    this.counted.add(e);
    return e;
  }
}
