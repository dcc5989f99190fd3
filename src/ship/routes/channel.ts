/**
 * GET /channel: Bay's call channel, one WebSocket per session that carries small
 * calls without an HTTP request each (src/protocol/ship/channel.ts has the frames,
 * channel-serve.ts serves them). Each call is handed to Ship's own app as the
 * request it stands for, so only the transport differs from HTTP.
 */
import { Hono } from "hono";
import { ChannelServer } from "../../protocol/ship/channel-serve.ts";
import { NONCE_HEADER, shipOperations as ops } from "../../protocol/ship/index.ts";
import { upgrade } from "../ws.ts";

/** The channel route; `dispatch` is Ship's app (`app.fetch`), `prove` answers the upgrade's nonce. */
export function channelRoutes(deps: {
  dispatch: () => (req: Request) => Response | Promise<Response>;
  prove: (nonce: string | null | undefined) => string | null;
}) {
  return new Hono().get(ops.openChannel.honoPath, (c) => {
    // sessionAuth let the upgrade through: each call carries the same credentials.
    const authorization = c.req.header("authorization") ?? "";
    const nonce = c.req.header(NONCE_HEADER);
    const proof = deps.prove(nonce);
    let channel: ChannelServer | null = null;
    return upgrade(c, {
      open: (ws) => {
        channel = new ChannelServer(
          { send: (f) => void ws.send(f), close: (code, reason) => ws.close(code, reason) },
          deps.dispatch(),
          authorization,
        );
        if (proof) ws.send(JSON.stringify({ type: "proof", proof }));
      },
      message: (_ws, data) => channel?.message(data),
      close: () => channel?.close(),
    });
  });
}
