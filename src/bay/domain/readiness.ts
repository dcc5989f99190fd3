/**
 * Waiting for a freshly started Ship: poll /health until it answers, then check
 * /meta with the session's secret (api version, capabilities, and that it names
 * this session). A container that exits while we wait fails fast instead of
 * running out the clock; its last log lines go to Bay's log, not to the client.
 */
import { SHIP_API_VERSION } from "../../protocol/ship/constants.ts";
import type { Driver } from "../drivers/driver.ts";
import { BayError } from "../errors.ts";
import { ShipWrongSessionError } from "../runtime/errors/ship-wrong-session-error.ts";
import type { ShipClient, ShipTarget } from "../runtime/ship-client.ts";
import type { Capability, Language } from "./profiles.ts";

export interface WaitForShipOptions {
  ship: ShipClient;
  driver: Driver;
  containerId: string;
  target: ShipTarget;
  capabilities: Capability[];
  /** The profile's languages: the Ship must run them all. */
  languages: Language[];
  deadline: number;
  now: () => number;
}

/** The longest pause between /health polls: a Ship that came up waits at most this long to be noticed. */
const MAX_POLL_MS = 50;

export async function waitForShip(o: WaitForShipOptions): Promise<void> {
  let delay = 10;
  let polls = 0;
  for (;;) {
    if (await o.ship.isHealthy(o.target.endpoint, 1000)) break;
    if (++polls % 10 === 0) {
      const info = await o.driver.containerStatus(o.containerId);
      if (info.state !== "running") {
        const logs = await o.driver.containerLogs(o.containerId, 20).catch(() => "");
        throw new BayError("session_not_ready", `sandbox runtime exited during start (exit code ${info.exitCode ?? "?"})`, {
          retryAfter: 1,
          details: { state: info.state, exit_code: info.exitCode ?? null },
          cause: new Error(`container ${o.containerId} ${info.state}; last output: ${logs.slice(-2000)}`),
        });
      }
    }
    if (o.now() + delay > o.deadline) {
      throw new BayError("session_not_ready", "sandbox runtime did not become ready in time", { retryAfter: 2 });
    }
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, MAX_POLL_MS);
  }
  const meta = await o.ship.meta(o.target).catch((e: unknown) => {
    // A fresh container that refuses its own secret or names another session is not ours to trust.
    if (e instanceof ShipWrongSessionError) {
      throw new BayError("ship_error", "sandbox runtime does not answer for the session it was started for", {
        details: { reason: "session_mismatch" },
      });
    }
    throw e;
  });
  if (meta.runtime.api_version !== SHIP_API_VERSION) {
    throw new BayError("ship_error", `sandbox runtime speaks API ${meta.runtime.api_version}, Bay needs ${SHIP_API_VERSION}`, {
      details: { reason: "api_version_mismatch", api_version: meta.runtime.api_version },
    });
  }
  const capabilities = meta.capabilities as unknown as Record<string, unknown>;
  const missing = o.capabilities.filter((c) => !capabilities[c]);
  if (missing.length > 0) {
    throw new BayError("ship_error", `sandbox runtime lacks capabilities the profile needs: ${missing.join(", ")}`, {
      details: { reason: "capability_mismatch", missing },
    });
  }
  const languages = new Set<string>(Array.isArray(meta.languages) ? meta.languages : []);
  const missingLanguages = o.languages.filter((l) => !languages.has(l));
  if (missingLanguages.length > 0) {
    throw new BayError("ship_error", `sandbox runtime lacks languages the profile needs: ${missingLanguages.join(", ")}`, {
      details: { reason: "capability_mismatch", missing_languages: missingLanguages },
    });
  }
}

/**
 * Warms a fresh Ship's Python kernel for the warm pool: an empty cell, sent
 * through Ship's exec route with the session's secret, answers once the kernel
 * has imported IPython and run its own silent warm-up cell (kernel/driver.py),
 * and leaves nothing behind (an empty cell stores no history and no count).
 * A member is marked ready only after this.
 */
export async function warmPythonKernel(o: Pick<WaitForShipOptions, "ship" | "target" | "deadline" | "now">): Promise<void> {
  const seconds = Math.min(300, Math.max(1, Math.ceil((o.deadline - o.now()) / 1000)));
  const res = await o.ship.execPython(o.target, { code: "", timeout: seconds });
  const reply = await res.json().catch(() => null);
  if (reply?.success !== true) {
    throw new BayError("session_not_ready", "the sandbox's python kernel did not warm up", {
      retryAfter: 2,
      cause: new Error(`warm-up cell answered ${JSON.stringify(reply)?.slice(0, 500)}`),
    });
  }
}
