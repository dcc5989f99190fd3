/**
 * Routes a capability call to the sandbox's Ship: checks ownership, expiry and
 * the profile's capabilities before any container starts, ensures a session,
 * forwards the request, and keeps the idle deadline moving. When the Ship
 * cannot be reached because its container died, a replayable call is retried
 * once on a fresh session.
 */
import { BayError, notFound } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { isUnreachable, type ShipClient } from "../runtime/ship-client.ts";
import type { Stores } from "../store/index.ts";
import type { Capability, ProfileRegistry } from "./profiles.ts";
import { expiredError, type SessionManager } from "./session-manager.ts";

export interface CapabilityCall {
  owner: string;
  sandboxId: string;
  capability: Capability;
  /** Ship operation name, for the audit log. */
  operation: string;
  method: string;
  /** Path and query on the Ship. */
  shipPath: string;
  headers?: Headers;
  /** A buffered body can be replayed on a fresh session; a stream cannot. */
  body?: string | ReadableStream<Uint8Array> | null;
  timeoutMs: number;
  requestId: string;
}

export interface CapabilityRouterDeps {
  stores: Stores;
  sessions: SessionManager;
  ship: ShipClient;
  profiles: ProfileRegistry;
  logger: Logger;
  now?: () => number;
}

export class CapabilityRouter {
  private readonly now: () => number;
  constructor(private readonly deps: CapabilityRouterDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Forwards the call and returns the Ship's successful response, unread. */
  async call(call: CapabilityCall): Promise<Response> {
    const started = this.now();
    let outcome = "ok";
    try {
      return await this.route(call);
    } catch (e) {
      outcome = e instanceof BayError ? e.code : "internal_error";
      throw e;
    } finally {
      // The audit line: who did what where, never the code, command or content.
      this.deps.logger.info("capability call", {
        owner: call.owner,
        sandbox_id: call.sandboxId,
        capability: call.capability,
        operation: call.operation,
        request_id: call.requestId,
        duration_ms: this.now() - started,
        outcome,
      });
    }
  }

  /** Checks everything that can be refused before a container starts. */
  async preflight(owner: string, sandboxId: string, capability: Capability) {
    const { stores, profiles } = this.deps;
    const sb = await stores.sandboxes.findLive(owner, sandboxId, this.now());
    if (!sb) throw notFound("sandbox", sandboxId);
    if (sb.status === "expired") throw expiredError(sandboxId);
    const profile = profiles.forSandbox(sb.profileId);
    profiles.assertCapability(profile, capability);
    return { sandbox: sb, profile };
  }

  private async route(call: CapabilityCall): Promise<Response> {
    const { sessions, ship, stores } = this.deps;
    const { profile } = await this.preflight(call.owner, call.sandboxId, call.capability);
    const request = { method: call.method, path: call.shipPath, headers: call.headers, body: call.body ?? null, timeoutMs: call.timeoutMs };
    let endpoint = await sessions.ensureRunning(call.sandboxId);
    let res: Response;
    try {
      res = await ship.send(endpoint, request);
    } catch (e) {
      if (!isUnreachable(e) || !(await sessions.checkDead(call.sandboxId, endpoint))) throw e;
      if (call.body instanceof ReadableStream) {
        throw new BayError("session_not_ready", "the sandbox runtime was restarted; retry the upload", { retryAfter: 1 });
      }
      endpoint = await sessions.ensureRunning(call.sandboxId);
      res = await ship.send(endpoint, request);
    }
    await stores.sandboxes.extendIdleDeadline(call.sandboxId, this.now() + profile.idle_timeout * 1000);
    return res;
  }
}
