/**
 * A tiny HTTP server compiled into the `bay-test-echo` image: a stand-in for Ship that
 * listens on $PORT, answers /health and writes request bodies into /workspace.
 */
const port = Number(process.env.PORT ?? 8080);
Bun.serve({
  port,
  hostname: "0.0.0.0",
  async fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/health") return Response.json({ ok: true, uid: process.getuid?.(), tag: process.env.ECHO_TAG });
    if (url.pathname === "/write" && req.method === "POST") {
      await Bun.write(`/workspace/${url.searchParams.get("name")}`, await req.text());
      return new Response("written");
    }
    return new Response("not found", { status: 404 });
  },
});
console.log(`echo listening on ${port}`);
