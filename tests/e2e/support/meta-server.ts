/**
 * A tiny HTTP server compiled into the `bay-test-meta` image: a stand-in for Ship
 * whose GET /meta answer is set by env, to test Bay's readiness checks. Like
 * Ship, it reads its session credentials from stdin, wants the bearer key on /meta
 * and proves its answers (src/protocol/ship/auth.ts).
 *   META_API_VERSION   runtime.api_version (default "v1")
 *   META_CAPABILITIES  comma-separated capability names (default "python,shell,filesystem")
 *   META_LANGUAGES     comma-separated code-context languages (default "python,javascript,typescript")
 *   META_SESSION       "other": /meta names another session than the one it was started for
 */
import { readSync } from "node:fs";
import { NONCE_HEADER, PROOF_HEADER, shipBearer, shipProof } from "../../../src/protocol/ship/auth.ts";

const port = Number(process.env.PORT ?? 8123);
const apiVersion = process.env.META_API_VERSION ?? "v1";
const capabilities = (process.env.META_CAPABILITIES ?? "python,shell,filesystem").split(",").filter(Boolean);
const languages = (process.env.META_LANGUAGES ?? "python,javascript,typescript").split(",").filter(Boolean);

function readLine(): string {
  const buf = Buffer.alloc(4096);
  let n = 0;
  for (;;) {
    const got = readSync(0, buf, n, buf.length - n, null);
    if (got === 0) break;
    n += got;
    if (buf.subarray(0, n).includes(10)) break;
  }
  return buf.subarray(0, n).toString("utf8").split("\n")[0] ?? "";
}
const credentials = JSON.parse(readLine()) as { session_id: string; secret: string };
const sessionId = process.env.META_SESSION === "other" ? "sess-someone-else" : credentials.session_id;

Bun.serve({
  port,
  hostname: "0.0.0.0",
  fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/health") return Response.json({ status: "ok" });
    if (req.headers.get("authorization") !== `Bearer ${shipBearer(credentials.secret)}`) {
      return Response.json({ error: { code: "unauthorized", message: "no", details: {} } }, { status: 401 });
    }
    const headers = { [PROOF_HEADER]: shipProof(credentials.secret, req.headers.get(NONCE_HEADER) ?? "") };
    if (url.pathname === "/meta") {
      return Response.json(
        {
          runtime: { name: "bay-test-meta", version: "0.0.0", api_version: apiVersion, build: {} },
          session: { id: sessionId },
          workspace: { mount_path: "/workspace" },
          capabilities: Object.fromEntries(capabilities.map((c) => [c, { operations: [] }])),
          languages,
        },
        { headers },
      );
    }
    return new Response("not found", { status: 404, headers });
  },
});
console.log(`meta listening on ${port}`);
