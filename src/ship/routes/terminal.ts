import { Hono } from "hono";
import { z } from "zod";
import { NONCE_HEADER, shipOperations as ops } from "../../protocol/ship/index.ts";
import { checkEnvVars } from "../../protocol/env-vars.ts";
import { ShipError } from "../errors.ts";
import type { TerminalRegistry } from "../terminal/terminal-registry.ts";
import type { TerminalSession } from "../terminal/terminal-session.ts";
import { validate } from "../validation.ts";
import { workingDir } from "../working-dir.ts";
import { MAX_FRAME_BYTES, type ShipSocket, upgrade } from "../ws.ts";

const terminalBody = ops.createTerminal.body.superRefine((body, ctx) => checkEnvVars(body.env, "env", ctx));

/** Control messages a terminal's peer may send (text frames). */
const control = z.discriminatedUnion("type", [
  z.object({ type: z.literal("resize"), cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }),
  z.object({ type: z.literal("ack"), bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }),
]);

function onControl(session: TerminalSession, text: string): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const parsed = control.safeParse(value);
  if (!parsed.success) {
    session.control({
      type: "error",
      error: {
        code: "validation_error",
        message: "a text frame must be a JSON control message: resize {cols, rows} or ack {bytes}",
        details: {},
      },
    });
    return;
  }
  if (parsed.data.type === "resize") session.resize(parsed.data.cols, parsed.data.rows);
  else session.ack(parsed.data.bytes);
}

/**
 * POST /terminals and the WebSocket attach. An attach that carries Bay's nonce
 * gets its proof (`prove`) as the first frame, `{"type":"proof","proof":…}`: a
 * WebSocket client cannot read the handshake's headers, where other answers carry it.
 */
export function terminalRoutes(deps: {
  terminals: TerminalRegistry;
  workspace: string;
  prove: (nonce: string | null | undefined) => string | null;
}) {
  return new Hono()
    .post(ops.createTerminal.honoPath, async (c) => {
      // The body is optional: no body means the default size.
      const text = await c.req.text();
      let raw: unknown = {};
      if (text.trim() !== "") {
        try {
          raw = JSON.parse(text);
        } catch {
          throw new ShipError("validation_error", "malformed JSON body");
        }
      }
      const body = terminalBody.safeParse(raw);
      if (!body.success) {
        const issue = body.error.issues[0];
        const at = issue?.path.length ? `${issue.path.map(String).join(".")}: ` : "";
        throw new ShipError("validation_error", `invalid json: ${at}${issue?.message ?? "bad body"}`);
      }
      const { cols, rows, cwd, env } = body.data;
      const dir = cwd === undefined ? undefined : await workingDir(deps.workspace, cwd);
      const start = { cwd: dir?.absolute, cwdPath: dir?.relative, env };
      return c.json({ terminal_id: deps.terminals.create(cols, rows, start) }, 201);
    })
    .get(ops.attachTerminal.honoPath, validate("param", ops.attachTerminal.params), (c) => {
      const session = deps.terminals.unclaimed(c.req.valid("param").terminal_id);
      const nonce = c.req.header(NONCE_HEADER);
      const proof = deps.prove(nonce);
      const res = upgrade(c, {
        open: (ws: ShipSocket) => {
          if (proof) ws.send(JSON.stringify({ type: "proof", proof }));
          session.attach(ws);
        },
        message: (ws, data) => {
          // The link takes one byte more than a message (a server's WebSocket tags its messages); a terminal frame may not.
          if ((typeof data === "string" ? Buffer.byteLength(data) : data.byteLength) > MAX_FRAME_BYTES) {
            ws.close(1009, "message too big");
            return;
          }
          if (typeof data === "string") onControl(session, data);
          else session.input(data);
        },
        drain: () => session.drained(),
        close: () => session.hangup(),
      });
      // Synchronous with the check above: two attaches cannot both pass it.
      session.claimed = true;
      return res;
    });
}
