/**
 * Waiting for a freshly started Ship: poll /health until it answers, then check
 * /meta (api version, capabilities). A container that exits while we wait fails
 * fast with its last log lines instead of running out the clock.
 */
import type { Driver } from "../drivers/driver.ts";
import { BayError } from "../errors.ts";
import type { ShipClient } from "../runtime/ship-client.ts";
import type { Capability } from "./profiles.ts";

export const SHIP_API_VERSION = "v1";

export interface WaitForShipOptions {
  ship: ShipClient;
  driver: Driver;
  containerId: string;
  baseUrl: string;
  capabilities: Capability[];
  deadline: number;
  now: () => number;
}

export async function waitForShip(o: WaitForShipOptions): Promise<void> {
  let delay = 25;
  let polls = 0;
  for (;;) {
    if (await o.ship.isHealthy(o.baseUrl, 1000)) break;
    if (++polls % 5 === 0) {
      const info = await o.driver.containerStatus(o.containerId);
      if (info.state !== "running") {
        const logs = await o.driver.containerLogs(o.containerId, 20).catch(() => "");
        throw new BayError("session_not_ready", `sandbox runtime exited during start (${info.state}, exit code ${info.exitCode ?? "?"})`, {
          retryAfter: 1,
          details: { state: info.state, exit_code: info.exitCode ?? null, logs: logs.slice(-2000) },
        });
      }
    }
    if (o.now() + delay > o.deadline) {
      throw new BayError("session_not_ready", "sandbox runtime did not become ready in time", { retryAfter: 2 });
    }
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
  const meta = await o.ship.meta(o.baseUrl);
  if (meta.runtime.api_version !== SHIP_API_VERSION) {
    throw new BayError("ship_error", `sandbox runtime speaks API ${meta.runtime.api_version}, Bay needs ${SHIP_API_VERSION}`, {
      details: { reason: "api_version_mismatch", runtime: meta.runtime },
    });
  }
  const missing = o.capabilities.filter((c) => !meta.capabilities[c]);
  if (missing.length > 0) {
    throw new BayError("ship_error", `sandbox runtime lacks capabilities the profile needs: ${missing.join(", ")}`, {
      details: { reason: "capability_mismatch", missing },
    });
  }
}
