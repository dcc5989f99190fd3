/**
 * A Bay (its own process, as a real one is) whose sandbox `sb-1` has a terminal
 * that floods output as fast as the client takes it: 64 KiB frames of lines.
 * Prints its port on the first line of stdout. For `bay sandbox shell` tests.
 */
const frame = new Uint8Array(64 * 1024).fill(0x61);
for (let i = 79; i < frame.length; i += 80) frame[i] = 0x0a;
function flood(ws: import("bun").ServerWebSocket<unknown>) {
  while (ws.send(frame) > 0 && ws.getBufferedAmount() < 4 * 1024 * 1024) {}
}
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req, srv) {
    const path = new URL(req.url).pathname;
    if (path === "/v1/sandboxes/sb-1/terminal")
      return srv.upgrade(req, { data: undefined }) ? undefined : new Response("no", { status: 400 });
    if (path === "/v1/sandboxes/sb-1") return Response.json({ id: "sb-1", status: "running" });
    return Response.json({ error: { code: "not_found", message: "no" } }, { status: 404 });
  },
  websocket: { open: flood, drain: flood, message() {} },
});
console.log(server.port);

export {};
