/**
 * The least any proxy written on Bun pays here: a bare `Bun.serve` that reads the
 * request body, sends it on with `fetch` (keep-alive) to one Ship's
 * /ipython/exec with the session's secret, reads the answer whole and returns
 * it. No routing, no auth, no validation, no log. Run as its own process, like
 * Bay, so the exec bench can set Bay's overhead beside the floor of the hop itself.
 *
 *   bun bench/bare-proxy.ts <ship endpoint> <secret>     (prints its port)
 */
const [endpoint, secret] = process.argv.slice(2);
if (!endpoint || !secret) throw new Error("usage: bun bench/bare-proxy.ts <ship endpoint> <secret>");
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const res = await fetch(`${endpoint}/ipython/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: await req.text(),
    });
    return new Response(await res.arrayBuffer(), { status: res.status, headers: { "content-type": "application/json" } });
  },
});
console.log(server.port);
