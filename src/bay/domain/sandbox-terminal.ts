/**
 * A sandbox's terminal: a login shell on a PTY in its Ship, bridged to the
 * client's WebSocket (terminal-bridge.ts), covered like any long call while it
 * is open; and the single-use tickets a browser opens it with.
 */
import { createHash, randomBytes } from "node:crypto";
import { BayError, notFound } from "../errors.ts";
import { DEADLINES } from "../runtime/ship-client.ts";
import type { Stores } from "../store/index.ts";
import type { CallContext, CapabilityRouter } from "./capability-router.ts";
import { TerminalBridge } from "./terminal-bridge.ts";
import type { TerminalRequest } from "../../protocol/ship/index.ts";
import { normalizeWorkspacePath } from "./paths.ts";
import { assertEnvVars } from "./env-vars.ts";

/** How long a ticket may wait before it is used. */
export const TICKET_TTL_MS = 30_000;

export interface SandboxTerminalDeps {
  router: CapabilityRouter;
  stores: Stores;
  now?: () => number;
}

/** Where a terminal's shell starts and what it is given. */
export interface TerminalStart {
  /** A workspace-relative directory (checked by the path rule); default the workspace. */
  cwd?: string;
  env?: Record<string, string>;
}

/** The Ship's request for a terminal: a bad cwd or variable is refused here, before any runtime starts. */
function terminalRequest(size: { cols: number; rows: number }, start: TerminalStart): TerminalRequest {
  const request: TerminalRequest = { ...size };
  if (start.cwd !== undefined) request.cwd = normalizeWorkspacePath(start.cwd);
  if (start.env && Object.keys(start.env).length > 0) {
    assertEnvVars(start.env, "env");
    request.env = start.env;
  }
  return request;
}

const hashTicket = (ticket: string): string => createHash("sha256").update(ticket).digest("hex");

export class SandboxTerminal {
  private readonly now: () => number;

  constructor(private readonly deps: SandboxTerminalDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** What can be refused before any container starts: unknown or another owner's sandbox, expired, no shell. */
  async check(ctx: CallContext): Promise<void> {
    await this.deps.router.preflight(ctx.owner, ctx.sandboxId, "shell");
  }

  /**
   * Starts a shell in the sandbox (its runtime too, if needed) and connects to it; the
   * client attaches to the bridge. `start`: its working directory (workspace-relative)
   * and environment variables, checked before any runtime starts.
   */
  open(ctx: CallContext, size: { cols: number; rows: number }, start: TerminalStart = {}): Promise<TerminalBridge> {
    const request = terminalRequest(size, start);
    return this.deps.router.call(ctx, {
      capability: "shell",
      operation: "terminal",
      coverMs: DEADLINES.stream,
      opens: true,
      // Nothing ran when the Ship could not be reached: a fresh session may take it.
      replayable: true,
      run: async (ship, session) => {
        const { terminal_id } = await ship.createTerminal(session, request, ctx);
        return new TerminalBridge(await ship.attachTerminal(session, terminal_id, ctx), ctx.requestId);
      },
    });
  }

  /** A single-use ticket for this sandbox's terminal (the sandbox must allow a shell; nothing starts). */
  async mintTicket(owner: string, sandboxId: string): Promise<{ ticket: string; expiresAt: number }> {
    await this.deps.router.preflight(owner, sandboxId, "shell");
    const ticket = `tkt_${randomBytes(32).toString("base64url")}`;
    const now = this.now();
    const expiresAt = now + TICKET_TTL_MS;
    await this.deps.stores.terminalTickets.insert({ hash: hashTicket(ticket), owner, sandboxId, now, expiresAt });
    // Spent and expired tickets are useless; forget them as new ones are made.
    await this.deps.stores.terminalTickets.purge(now - TICKET_TTL_MS).catch(() => 0);
    return { ticket, expiresAt };
  }

  /**
   * The owner a ticket was minted for. It is spent by this call whatever follows:
   * unknown, used or expired is 401; a ticket for another sandbox is 404.
   */
  async redeemTicket(ticket: string, sandboxId: string): Promise<string> {
    const found = ticket.length <= 128 ? await this.deps.stores.terminalTickets.redeem(hashTicket(ticket), this.now()) : null;
    if (!found) throw new BayError("unauthorized", "invalid, used or expired terminal ticket", { details: {} });
    if (found.sandboxId !== sandboxId) throw notFound("sandbox", sandboxId);
    return found.owner;
  }
}
