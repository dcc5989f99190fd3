/**
 * A tiny HTTP server compiled into the `bay-test-meta` image: a stand-in for Ship
 * whose GET /meta answer is set by env, to test Bay's readiness checks.
 *   META_API_VERSION   runtime.api_version (default "v1")
 *   META_CAPABILITIES  comma-separated capability names (default "python,shell,filesystem")
 */
export {}; // a module: its names do not clash with echo-server.ts
const port = Number(process.env.PORT ?? 8123);
const apiVersion = process.env.META_API_VERSION ?? "v1";
const capabilities = (process.env.META_CAPABILITIES ?? "python,shell,filesystem").split(",").filter(Boolean);
Bun.serve({
  port,
  hostname: "0.0.0.0",
  fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/health") return Response.json({ status: "ok" });
    if (url.pathname === "/meta") {
      return Response.json({
        runtime: { name: "bay-test-meta", version: "0.0.0", api_version: apiVersion },
        workspace: { mount_path: "/workspace" },
        capabilities: Object.fromEntries(capabilities.map((c) => [c, { operations: [] }])),
      });
    }
    return new Response("not found", { status: 404 });
  },
});
console.log(`meta listening on ${port}`);
