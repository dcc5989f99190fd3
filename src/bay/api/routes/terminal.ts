/**
 * The terminal: a WebSocket bridged to a login shell in the sandbox, and the
 * tickets a browser opens it with. Everything that can fail does so before the
 * upgrade, with the error body; after it, the bridge speaks in frames.
 */
import type { MiddlewareHandler } from "hono";
import { Hono } from "hono";
import type { SandboxTerminal } from "../../domain/sandbox-terminal.ts";
import type { TerminalPeer } from "../../domain/terminal-bridge.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { callContext } from "../relay.ts";
import { badHandshake, type BaySocket, handshakeValid, isUpgradeRequest, notAnUpgrade, upgradeToWebSocket } from "../websocket.ts";

/** A client that upgraded but never opened within this is let go. */
const OPEN_GRACE_MS = 10_000;

const peer = (ws: BaySocket): TerminalPeer => ({
  send: (data) => void ws.send(data),
  close: (code, reason) => ws.close(code, reason),
  bufferedAmount: () => ws.getBufferedAmount(),
});

const TERMINAL_PATH = /^\/v1\/sandboxes\/[^/]+\/terminal$/;

/** A request to open a terminal with a ticket (a browser page's way in, from any origin: the ticket is the authority). */
export const carriesTerminalTicket = (req: Request): boolean => {
  const url = new URL(req.url);
  return req.method === "GET" && TERMINAL_PATH.test(url.pathname) && url.searchParams.has("ticket");
};

/**
 * Authenticates a terminal request by its `?ticket=` (browsers cannot set headers
 * on a WebSocket): the owner is the ticket's, and the ticket is spent. Runs
 * before the general auth, which then sees the owner set and lets it pass.
 */
export function terminalTicketAuth(terminal: SandboxTerminal): MiddlewareHandler {
  return async function bayTerminalTicket(c, next) {
    const ticket = c.req.query("ticket");
    if (ticket === undefined) return next();
    c.set("owner", await terminal.redeemTicket(ticket, c.req.param("id") ?? ""));
    return next();
  };
}

export function terminalRoutes(deps: AppDeps): Hono {
  const { sandboxTerminal } = deps;
  const app = new Hono();

  app.get(ops.openTerminal.honoPath, validate("param", ops.openTerminal.params), validate("query", ops.openTerminal.query), async (c) => {
    const ctx = callContext(c, c.req.valid("param").id);
    if (!isUpgradeRequest(c.req.raw)) {
      // Refused as it would be with an upgrade (404, 409, 400 capability) before saying what is missing.
      await sandboxTerminal.check(ctx);
      throw notAnUpgrade();
    }
    if (!handshakeValid(c.req.raw)) {
      await sandboxTerminal.check(ctx);
      throw badHandshake();
    }
    const { cols, rows, cwd, input_acks } = c.req.valid("query");
    const bridge = await sandboxTerminal.open(ctx, { cols, rows }, { cwd });
    if (input_acks) bridge.countInput();
    let opened = false;
    const upgraded = upgradeToWebSocket(
      c,
      {
        open: (ws) => {
          opened = true;
          bridge.attach(peer(ws));
        },
        message: (_ws, data) => bridge.fromClient(data),
        drain: () => bridge.drained(),
        close: () => bridge.clientClosed(),
      },
      { "X-Request-Id": c.get("requestId") },
    );
    if (!upgraded) {
      bridge.clientClosed();
      throw notAnUpgrade();
    }
    const timer = setTimeout(() => {
      if (!opened) bridge.clientClosed();
    }, OPEN_GRACE_MS);
    timer.unref?.();
    // Bun has taken the connection over: this response is never sent.
    return new Response(null);
  });

  app.post(ops.createTerminalTicket.honoPath, validate("param", ops.createTerminalTicket.params), async (c) => {
    const id = c.req.valid("param").id;
    const { ticket, expiresAt } = await sandboxTerminal.mintTicket(c.get("owner"), id);
    const url = `/v1/sandboxes/${encodeURIComponent(id)}/terminal?ticket=${encodeURIComponent(ticket)}`;
    return c.json({ ticket, expires_at: new Date(expiresAt).toISOString(), url }, 201);
  });
  return app;
}
