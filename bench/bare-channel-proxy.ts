/**
 * bench/bare-proxy.ts with Bay's hop to Ship instead of a fetch: one call
 * channel (src/protocol/ship/channel.ts), opened and proven once, each request's
 * body sent on as a call frame and the answer frame returned. No routing, auth,
 * validation, deadlines or log: the floor of the hop a served Bay makes.
 *
 *   bun bench/bare-channel-proxy.ts <ship endpoint> <secret>     (prints its port)
 */
import { openShipSocket } from "../src/bay/runtime/ship-socket.ts";
import { type ChannelAnswer, encodeCall, parseChannelAnswer } from "../src/protocol/ship/channel.ts";
const [endpoint, secret] = process.argv.slice(2);
if (!endpoint || !secret) throw new Error("usage: bun bench/bare-channel-proxy.ts <ship endpoint> <secret>");
const { ws } = await openShipSocket({ endpoint, secret, sessionId: "bench" }, "/channel", {}, { deadlineMs: 10_000 });
const pending = new Map<number, (a: ChannelAnswer) => void>();
ws.onmessage = (e) => {
  const a = parseChannelAnswer(e.data);
  if (!a) throw new Error("Ship sent an invalid channel frame");
  pending.get(a.id)?.(a);
  pending.delete(a.id);
};
let next = 0;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const id = ++next;
    const body = await req.text();
    const a = await new Promise<ChannelAnswer>((resolve) => {
      pending.set(id, resolve);
      ws.send(encodeCall({ id, method: "POST", path: "/ipython/exec", headers: { "content-type": "application/json" }, body }));
    });
    return new Response(a.body, { status: a.status, headers: { "content-type": a.type } });
  },
});
console.log(server.port);
