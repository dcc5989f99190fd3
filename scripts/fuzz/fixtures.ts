/**
 * Real ids for the fuzzer to aim at: sandboxes and workspaces of the caller
 * (one with a running Ship, files, a background process and a server; one idle), of
 * another owner, deleted ones, and "doomed" ones that valid deletes may
 * consume. The keeper removes what fuzzed creates made and replaces consumed
 * doomed fixtures, an ended background process and the server in the running
 * sandbox (for the port operations) between batches, so Docker use stays bounded.
 */
import { SERVER_PORT } from "./draft.ts";
import { createE2bFixtures, E2bKeeper, killE2bSandboxes } from "./e2b.ts";
import { createEnvdRpcFixtures, EnvdRpcKeeper } from "./envd-rpc-fixtures.ts";
import type { FuzzRequest, Resolver } from "./request.ts";
import type { Outcome } from "./send.ts";

type Json = Record<string, any>;

/** A JSON call to Bay as `owner`; throws unless the status is `expect`. */
export async function call(url: string, owner: string, method: string, path: string, body?: unknown, expect = 200): Promise<Json> {
  const res = await fetch(url + path, {
    method,
    headers: { "x-owner": owner, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`fixture ${method} ${path} as ${owner}: ${res.status} ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as Json) : {};
}

async function upload(url: string, owner: string, route: string, path: string, data: Uint8Array): Promise<void> {
  const form = new FormData();
  form.append("path", path);
  form.append("file", new Blob([data as Uint8Array<ArrayBuffer>]), "bin.dat");
  const res = await fetch(`${url}${route}`, { method: "POST", headers: { "x-owner": owner }, body: form });
  if (res.status !== 200) throw new Error(`fixture upload ${route}: ${res.status} ${await res.text()}`);
}

const BINARY = Uint8Array.from({ length: 1024 }, (_, i) => (i * 131 + 7) & 0xff);

/** The code contexts of the running sandbox: one to use, one a valid delete may consume. */
async function createContexts(url: string, sandbox: string): Promise<Record<string, string>> {
  const route = `/v1/sandboxes/${sandbox}/contexts`;
  return {
    "ctx.own": (await call(url, "alice", "POST", route, { language: "python" }, 201)).id,
    "ctx.doomed": (await call(url, "alice", "POST", route, { language: "python" }, 201)).id,
  };
}

/**
 * A server in the running sandbox, for the port operations: Python's own HTTP
 * server on SERVER_PORT answering every method the port operations send (GET and
 * HEAD list files; POST, PUT, PATCH and DELETE answer what they read of the body,
 * by Content-Length or chunked). Started in the background; the fuzz does not wait
 * for it, a request before it listens is 409.
 */
const SERVER_SCRIPT = `
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))
    def echo(self):
        data = self.body()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_POST = do_PUT = do_PATCH = do_DELETE = echo
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
`;

async function startServer(url: string, sandboxId: string): Promise<void> {
  await call(url, "alice", "PUT", `/v1/sandboxes/${sandboxId}/filesystem/files`, { path: "fuzz/server.py", content: SERVER_SCRIPT });
  await call(url, "alice", "POST", `/v1/sandboxes/${sandboxId}/shell/exec`, {
    command: `python3 fuzz/server.py ${SERVER_PORT}`,
    background: true,
  });
}

/** The background process fixture: reads its stdin (open, for the stdin writes) until it is closed. */
const startBackground = async (url: string, sandboxId: string): Promise<string> =>
  (await call(url, "alice", "POST", `/v1/sandboxes/${sandboxId}/shell/exec`, { command: "cat > /dev/null", background: true, stdin: true }))
    .process_id;

/** Creates the fixtures and returns the placeholder values (`sb.own` → id, …). */
export async function createFixtures(url: string): Promise<Record<string, string>> {
  const v: Record<string, string> = {};
  // A TTL, so that extend_ttl has something to extend.
  const own = await call(url, "alice", "POST", "/v1/sandboxes", { ttl: 86400 }, 201);
  v["sb.own"] = own.id;
  v["ws.managed"] = own.workspace_id;
  await call(url, "alice", "POST", `/v1/sandboxes/${own.id}/python/exec`, { code: "1+1" });
  await call(url, "alice", "PUT", `/v1/sandboxes/${own.id}/filesystem/files`, { path: "fuzz/hello.txt", content: "hello\n" });
  await call(url, "alice", "PUT", `/v1/sandboxes/${own.id}/filesystem/files`, { path: "fuzz/dir/a.txt", content: "a\n" });
  await upload(url, "alice", `/v1/sandboxes/${own.id}/filesystem/upload`, "fuzz/bin.dat", BINARY);
  v["proc.bg"] = await startBackground(url, own.id);
  await startServer(url, own.id);
  Object.assign(v, await createContexts(url, own.id));
  const idle = await call(url, "alice", "POST", "/v1/sandboxes", { ttl: 86400 }, 201);
  v["sb.idle"] = idle.id;
  // Files for the idle sandbox, written through its workspace so that no runtime starts.
  for (const [path, content] of [
    ["fuzz/hello.txt", "hello\n"],
    ["fuzz/dir/a.txt", "a\n"],
  ])
    await call(url, "alice", "PUT", `/v1/workspaces/${idle.workspace_id}/filesystem/files`, { path, content });
  await upload(url, "alice", `/v1/workspaces/${idle.workspace_id}/filesystem/upload`, "fuzz/bin.dat", BINARY);

  const ext = await call(url, "alice", "POST", "/v1/workspaces", {}, 201);
  v["ws.ext"] = ext.id;
  await call(url, "alice", "PUT", `/v1/workspaces/${ext.id}/filesystem/files`, { path: "fuzz/hello.txt", content: "hello\n" });
  await call(url, "alice", "PUT", `/v1/workspaces/${ext.id}/filesystem/files`, { path: "fuzz/dir/a.txt", content: "a\n" });
  await upload(url, "alice", `/v1/workspaces/${ext.id}/filesystem/upload`, "fuzz/bin.dat", BINARY);

  v["sb.other"] = (await call(url, "bob", "POST", "/v1/sandboxes", {}, 201)).id;
  v["ctx.other"] = (await call(url, "bob", "POST", `/v1/sandboxes/${v["sb.other"]}/contexts`, { language: "python" }, 201)).id;
  v["ws.other"] = (await call(url, "bob", "POST", "/v1/workspaces", {}, 201)).id;
  await call(url, "bob", "PUT", `/v1/workspaces/${v["ws.other"]}/filesystem/files`, { path: "fuzz/hello.txt", content: "bob's\n" });

  const gone = await call(url, "alice", "POST", "/v1/sandboxes", {}, 201);
  await call(url, "alice", "DELETE", `/v1/sandboxes/${gone.id}`, undefined, 204);
  v["sb.gone"] = gone.id;
  const goneWs = await call(url, "alice", "POST", "/v1/workspaces", {}, 201);
  await call(url, "alice", "DELETE", `/v1/workspaces/${goneWs.id}`, undefined, 204);
  v["ws.gone"] = goneWs.id;

  v["sb.unknown"] = "sandbox-00000000000000000000fuzz";
  v["ws.unknown"] = "ws-00000000000000000000fuzz";
  v["proc.unknown"] = "proc-00000000fuzz";
  v["ctx.unknown"] = "ctx-00000000fuzz";
  v["cursor.sb"] = (await call(url, "alice", "GET", "/v1/sandboxes?limit=1")).next_cursor;
  v["cursor.ws"] = (await call(url, "alice", "GET", "/v1/workspaces?limit=1")).next_cursor;
  v["cursor.other"] = (await call(url, "bob", "GET", "/v1/workspaces?limit=1")).next_cursor;
  v["sb.doomed"] = (await call(url, "alice", "POST", "/v1/sandboxes", {}, 201)).id;
  v["ws.doomed"] = (await call(url, "alice", "POST", "/v1/workspaces", {}, 201)).id;
  await createE2bFixtures(url, v);
  await createEnvdRpcFixtures(url, v);
  for (const [k, val] of Object.entries(v)) if (typeof val !== "string" || val === "") throw new Error(`fixture ${k} is empty`);
  return v;
}

interface Created {
  /** The collection it lives in: `sandboxes`, `workspaces`, or `sandboxes/<id>/contexts`. */
  kind: string;
  id: string;
  owner: string | undefined;
}

/** Tracks what fuzzed requests created or consumed and restores the fixtures between batches. */
export class FixtureKeeper {
  private readonly created: Created[] = [];
  private doomedUsed = { sb: false, ws: false };
  /** The background process fixture ended (killed, or its sandbox stopped). */
  private bgLost = false;
  /** The context fixtures ended (their sandbox stopped, or the doomed one deleted). */
  private contextsLost = false;
  /** The server fixture ended (its sandbox stopped). */
  private serverLost = false;
  private readonly e2b: E2bKeeper;
  private readonly envd: EnvdRpcKeeper;

  constructor(private readonly values: Record<string, string>) {
    this.e2b = new E2bKeeper(values);
    this.envd = new EnvdRpcKeeper(values);
  }

  /** Looks at one answered request for creations and consumed doomed fixtures. */
  note(req: FuzzRequest, resolve: Resolver, o: Outcome): void {
    if (o.kind !== "response") return;
    if (req.api === "e2b") {
      this.e2b.note(req, resolve, o);
      return;
    }
    if (req.connect) {
      this.envd.note(req, resolve, o);
      return;
    }
    const collection =
      req.aim === "createSandbox"
        ? "sandboxes"
        : req.aim === "createWorkspace"
          ? "workspaces"
          : req.aim === "createContext"
            ? /^\/v1\/sandboxes\/[^/?]+\/contexts/.exec(resolve(req.target))?.[0].slice(4)
            : undefined;
    if (o.status === 201 && collection) {
      try {
        const id = JSON.parse(new TextDecoder().decode(o.body)).id;
        const owner = req.headers.filter(([k]) => k.toLowerCase() === "x-owner").map(([, x]) => resolve(x))[0];
        if (typeof id === "string") this.created.push({ kind: collection, id, owner });
      } catch {
        // not JSON: the checks report it
      }
    }
    const ok = o.status >= 200 && o.status < 300;
    if (ok && req.aim === "stopSandbox" && req.target.includes("{{sb.own}}")) this.bgLost = this.contextsLost = this.serverLost = true;
    if (ok && req.aim === "deleteContext" && req.target.includes("{{ctx.doomed}}")) this.contextsLost = true;
    if (ok && req.aim === "killShellProcess" && req.target.includes("{{proc.bg}}")) this.bgLost = true;
    if (req.method === "DELETE" && o.status === 204) {
      if (req.target.includes("{{sb.doomed}}")) this.doomedUsed.sb = true;
      if (req.target.includes("{{ws.doomed}}")) this.doomedUsed.ws = true;
    }
  }

  /** Deletes what fuzzed creates made (sandboxes first: they may hold a workspace) and replaces used doomed fixtures. */
  async maintain(url: string): Promise<void> {
    // Contexts first (their sandbox may go next), then sandboxes (they may hold a workspace), then workspaces.
    const rank = (k: string) => (k.includes("/contexts") ? 0 : k === "sandboxes" ? 1 : 2);
    const batch = this.created.splice(0).sort((a, b) => rank(a.kind) - rank(b.kind));
    for (const c of batch) {
      await fetch(`${url}/v1/${c.kind}/${encodeURIComponent(c.id)}`, {
        method: "DELETE",
        headers: c.owner !== undefined ? { "x-owner": c.owner } : {},
        signal: AbortSignal.timeout(60_000),
      }).catch(() => {});
    }
    if (this.doomedUsed.sb) this.values["sb.doomed"] = (await call(url, "alice", "POST", "/v1/sandboxes", {}, 201)).id;
    if (this.doomedUsed.ws) this.values["ws.doomed"] = (await call(url, "alice", "POST", "/v1/workspaces", {}, 201)).id;
    this.doomedUsed = { sb: false, ws: false };
    if (this.contextsLost) {
      // Contexts that outlived a delete are removed first, so the cap on contexts is never reached by fixtures.
      for (const key of ["ctx.own", "ctx.doomed"]) {
        await fetch(`${url}/v1/sandboxes/${this.values["sb.own"]}/contexts/${this.values[key]}`, {
          method: "DELETE",
          headers: { "x-owner": "alice" },
          signal: AbortSignal.timeout(60_000),
        }).catch(() => {});
      }
      Object.assign(this.values, await createContexts(url, this.values["sb.own"]!));
      this.contextsLost = false;
    }
    if (!this.bgLost) {
      // A stdin write with eof ends it, as a kill does: checked, not only noted.
      const p = await fetch(`${url}/v1/sandboxes/${this.values["sb.own"]}/shell/processes/${this.values["proc.bg"]}`, {
        headers: { "x-owner": "alice" },
        signal: AbortSignal.timeout(60_000),
      }).catch(() => null);
      if (p?.status === 200 && ((await p.json()) as { status?: string }).status !== "running") this.bgLost = true;
    }
    if (this.bgLost) {
      this.values["proc.bg"] = await startBackground(url, this.values["sb.own"]!);
      this.bgLost = false;
    }
    if (this.serverLost) {
      await startServer(url, this.values["sb.own"]!);
      this.serverLost = false;
    }
    await this.e2b.maintain(url);
    await this.envd.maintain(url);
  }
}

/**
 * Deletes every sandbox, then every workspace, of `owners` through Bay (as a
 * client would), so what Bay leaves behind afterwards is Bay's own leak.
 */
export async function deleteEverything(url: string, owners: string[]): Promise<void> {
  // The E2B API's sandboxes are killed through it first, as its clients would.
  await killE2bSandboxes(url, owners);
  for (const kind of ["sandboxes", "workspaces"] as const) {
    for (const owner of owners) {
      for (let round = 0; round < 20; round++) {
        const page = await call(url, owner, "GET", `/v1/${kind}?limit=200`);
        const items = (page.items ?? []) as Array<{ id: string }>;
        if (items.length === 0) break;
        for (const { id } of items) {
          const res = await fetch(`${url}/v1/${kind}/${id}`, {
            method: "DELETE",
            headers: { "x-owner": owner },
            signal: AbortSignal.timeout(120_000),
          });
          await res.arrayBuffer();
          if (res.status !== 204 && res.status !== 404) throw new Error(`deleting ${kind} ${id} of ${owner}: ${res.status}`);
        }
      }
    }
  }
}
