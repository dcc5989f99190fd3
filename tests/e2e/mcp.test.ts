/**
 * Bay's MCP server through the SDK's own client, over both transports, against
 * a real Bay process on real Docker: streamable HTTP to POST /mcp, and stdio
 * through `bay mcp` (src/bay/cli.ts) relaying to the same Bay. A matplotlib
 * figure on the python-data profile comes back as MCP image content, Python
 * state persists between calls, files round-trip, and another owner's sandbox
 * id answers not found on both transports.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { defaultProfiles, shipImages } from "../../src/bay/config.ts";
import { type BayProcess, startBayProcess } from "../support/bay-process.ts";
import { pollUntil } from "../support/harness.ts";
import { SHIP_TAG } from "../support/images.ts";
import { removeLabelledQuietly, requireShipImages, SHIP_DATA_IMAGE, SHIP_IMAGE } from "./support/e2e.ts";

const ROOT = join(import.meta.dir, "../..");
const ALICE = `alice-mcp-${crypto.randomUUID()}`;
const BOB = `bob-mcp-${crypto.randomUUID()}`;
const instanceId = `e2e-mcp-${crypto.randomUUID().slice(0, 8)}`;
let dir = "";
let bay: BayProcess;
const clients: Client[] = [];

beforeAll(async () => {
  await requireShipImages([SHIP_IMAGE, SHIP_DATA_IMAGE]);
  dir = mkdtempSync(join(tmpdir(), "bay-mcp-"));
  bay = await startBayProcess({
    dbPath: join(dir, "bay.db"),
    instanceId,
    dir,
    config: {
      auth: {
        api_keys: [
          { key: ALICE, owner: "alice" },
          { key: BOB, owner: "bob" },
        ],
      },
      profiles: defaultProfiles(SHIP_TAG),
      driver: { helper_image: shipImages(SHIP_TAG).ship },
    },
    env: { BAY_AUTH_MODE: "api_key" },
  });
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await bay?.kill("SIGTERM");
  await removeLabelledQuietly({ "bay.instance_id": instanceId });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function httpClient(token: string): Promise<Client> {
  const client = new Client({ name: "bay-e2e-http", version: "0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${bay.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  );
  clients.push(client);
  return client;
}

async function stdioClient(token: string): Promise<Client> {
  const client = new Client({ name: "bay-e2e-stdio", version: "0" });
  await client.connect(
    new StdioClientTransport({
      command: "bun",
      args: ["run", join(ROOT, "src/bay/cli.ts"), "mcp", "--url", bay.url],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", BAY_TOKEN: token },
      stderr: "ignore",
    }),
  );
  clients.push(client);
  return client;
}

const run = (c: Client, name: string, args: Record<string, unknown>) => c.callTool({ name, arguments: args }) as Promise<CallToolResult>;
const textOf = (r: CallToolResult) =>
  r.content
    .filter((c) => c.type === "text")
    .map((c) => (c as { text: string }).text)
    .join("\n");

describe("streamable HTTP", () => {
  test("python-data: state persists, and a matplotlib figure comes back as an image block", async () => {
    const alice = await httpClient(ALICE);
    const id = JSON.parse(textOf(await run(alice, "create_sandbox", { profile: "python-data" }))).id as string;
    try {
      expect(textOf(await run(alice, "run_python", { sandbox_id: id, code: "x = 21", timeout: 120 }))).toBe("(no output)");
      const r = await run(alice, "run_python", {
        sandbox_id: id,
        code: "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()\nprint('answer', x * 2)",
        timeout: 120,
      });
      expect(r.isError).toBeFalsy();
      expect(textOf(r)).toContain("answer 42");
      const images = r.content.filter((c) => c.type === "image") as Array<{ data: string; mimeType: string }>;
      expect(images.length).toBe(1);
      expect(images[0]!.mimeType).toBe("image/png");
      const png = Buffer.from(images[0]!.data, "base64");
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(png.byteLength).toBeGreaterThan(1000);

      const failed = await run(alice, "run_python", { sandbox_id: id, code: "1/0" });
      expect(failed.isError).toBe(true);
      expect(textOf(failed)).toContain("ZeroDivisionError");
    } finally {
      await run(alice, "delete_sandbox", { sandbox_id: id });
    }
  }, 180_000);

  test("code contexts: TypeScript state persists across run_code calls, a second Python context is its own", async () => {
    const alice = await httpClient(ALICE);
    const id = JSON.parse(textOf(await run(alice, "create_sandbox", {}))).id as string;
    try {
      const ts = await run(alice, "run_code", { sandbox_id: id, language: "typescript", code: "const n: number = 20", timeout: 120 });
      expect(ts.isError).toBeFalsy();
      expect(textOf(await run(alice, "run_code", { sandbox_id: id, language: "typescript", code: "n + 22" }))).toContain("42");
      const ctx = JSON.parse(textOf(await run(alice, "create_context", { sandbox_id: id, language: "python" })));
      expect(ctx.language).toBe("python");
      await run(alice, "run_code", { sandbox_id: id, context_id: ctx.id, code: "y = 1" });
      const other = await run(alice, "run_code", { sandbox_id: id, language: "python", code: "y" });
      expect(other.isError).toBe(true);
      expect(textOf(other)).toContain("NameError");
      expect(textOf(await run(alice, "list_contexts", { sandbox_id: id }))).toContain(ctx.id);
      expect((await run(alice, "delete_context", { sandbox_id: id, context_id: ctx.id })).isError).toBeFalsy();
    } finally {
      await run(alice, "delete_sandbox", { sandbox_id: id });
    }
  }, 180_000);

  test("shell and files round-trip; another owner sees not found", async () => {
    const alice = await httpClient(ALICE);
    const bob = await httpClient(BOB);
    const id = JSON.parse(textOf(await run(alice, "create_sandbox", {}))).id as string;
    try {
      expect((await run(alice, "write_file", { sandbox_id: id, path: "notes/a.txt", content: "héllo\n" })).isError).toBeFalsy();
      expect(textOf(await run(alice, "read_file", { sandbox_id: id, path: "notes/a.txt" }))).toBe("héllo\n");
      const listing = JSON.parse(textOf(await run(alice, "list_files", { sandbox_id: id, path: "notes" })));
      expect(listing.entries).toEqual([{ path: "notes/a.txt", type: "file", size: 7 }]);
      // A run's environment variables, in each of the three tools; a bad one is the tool's error.
      const envSh = await run(alice, "run_shell", { sandbox_id: id, command: 'printf %s "$MCP_VAR"', env: { MCP_VAR: "shell" } });
      expect(textOf(envSh)).toBe("shell\n[exit code 0]");
      const envPy = await run(alice, "run_python", { sandbox_id: id, code: "import os\nos.environ['MCP_VAR']", env: { MCP_VAR: "py" } });
      expect(textOf(envPy)).toBe("'py'");
      const envJs = await run(alice, "run_code", {
        sandbox_id: id,
        language: "javascript",
        code: "process.env.MCP_VAR",
        env: { MCP_VAR: "js" },
      });
      expect(textOf(envJs)).toBe('"js"');
      const badEnv = await run(alice, "run_python", { sandbox_id: id, code: "1", env: { "A=B": "x" } });
      expect(badEnv.isError).toBe(true);
      expect(textOf(badEnv)).toContain("validation_error");
      const sh = await run(alice, "run_shell", { sandbox_id: id, command: "cat notes/a.txt; echo oops >&2; exit 3" });
      expect(sh.isError).toBe(true);
      expect(textOf(sh)).toBe("héllo\n[stderr]\noops\n[exit code 3]");

      for (const [name, args] of [
        ["run_python", { sandbox_id: id, code: "1" }],
        ["read_file", { sandbox_id: id, path: "notes/a.txt" }],
        ["delete_sandbox", { sandbox_id: id }],
      ] as const) {
        const r = await run(bob, name, args);
        expect(r.isError).toBe(true);
        expect(textOf(r)).toBe(`not_found: sandbox not found: ${id}`);
      }
      expect(textOf(await run(alice, "read_file", { sandbox_id: id, path: "notes/a.txt" }))).toBe("héllo\n");
    } finally {
      await run(alice, "delete_sandbox", { sandbox_id: id });
    }
  }, 120_000);

  test("http_request reads the first 256 KiB of an endless answer from the sandbox's server and stops (review s89 H1)", async () => {
    const alice = await httpClient(ALICE);
    const id = JSON.parse(textOf(await run(alice, "create_sandbox", {}))).id as string;
    try {
      const server = [
        "import http.server",
        "class H(http.server.BaseHTTPRequestHandler):",
        "  def do_GET(s):",
        "    s.send_response(200); s.send_header('content-type', 'text/plain'); s.end_headers()",
        "    while True: s.wfile.write(b'x' * 65536)",
        "http.server.ThreadingHTTPServer(('127.0.0.1', 8090), H).serve_forever()",
      ].join("\n");
      await run(alice, "write_file", { sandbox_id: id, path: "endless.py", content: server });
      expect((await run(alice, "run_shell", { sandbox_id: id, command: "python3 endless.py", background: true })).isError).toBeFalsy();
      const answer = await pollUntil(
        async () => {
          const r = await run(alice, "http_request", { sandbox_id: id, port: 8090, path: "/" });
          return r.isError ? null : (JSON.parse(textOf(r)) as { status: number; body: string; truncated?: boolean });
        },
        (a) => a !== null,
        30_000,
        "the server answering",
      );
      if (answer === null) throw new Error("unreachable");
      expect([answer.status, answer.body.length, answer.truncated]).toEqual([200, 64 * 1024, true]);
      expect(answer.body).toBe("x".repeat(64 * 1024));
      // Bay stopped reading: its memory did not take the endless body in.
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${bay.pid}/status`, "utf8"))?.[1]) / 1024;
      expect(rss).toBeLessThan(1024);
    } finally {
      await run(alice, "delete_sandbox", { sandbox_id: id });
    }
  }, 120_000);

  test("without a valid token the client cannot connect", async () => {
    const client = new Client({ name: "bay-e2e-anon", version: "0" });
    await expect(
      client.connect(
        new StreamableHTTPClientTransport(new URL(`${bay.url}/mcp`), {
          requestInit: { headers: { authorization: "Bearer nope-000000000000" } },
        }),
      ),
    ).rejects.toThrow(/401|unauthorized/i);
  });
});

describe("stdio through `bay mcp`", () => {
  test("the same tools, as the token's owner", async () => {
    const alice = await stdioClient(ALICE);
    const bob = await stdioClient(BOB);
    const names = (await alice.listTools()).tools.map((t) => t.name);
    expect(names).toContain("run_python");
    expect(names).toContain("create_sandbox");
    const id = JSON.parse(textOf(await run(alice, "create_sandbox", {}))).id as string;
    try {
      expect(textOf(await run(alice, "run_python", { sandbox_id: id, code: "6 * 7" }))).toBe("42");
      const r = await run(bob, "run_shell", { sandbox_id: id, command: "id" });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toBe(`not_found: sandbox not found: ${id}`);
      expect(JSON.parse(textOf(await run(bob, "list_sandboxes", {}))).items).toEqual([]);
    } finally {
      await run(alice, "delete_sandbox", { sandbox_id: id });
    }
  }, 120_000);

  test("piped input that ends at once (`printf … | bay mcp`): every request is still answered, then it exits 0", async () => {
    const lines = [
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "pipe", version: "0" } },
      },
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", id: 2, method: "tools/list" },
      { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "list_sandboxes", arguments: {} } },
    ];
    const piped = async (token: string) => {
      const proc = Bun.spawn(["bun", "run", join(ROOT, "src/bay/cli.ts"), "mcp", "--url", bay.url], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", BAY_TOKEN: token },
        stdin: new Blob([lines.map((l) => JSON.stringify(l)).join("\n") + "\n"]),
        stdout: "pipe",
        stderr: "pipe",
      });
      const code = await Promise.race([proc.exited, Bun.sleep(60_000).then(() => "hung")]);
      if (code === "hung") proc.kill("SIGKILL");
      const out = (await new Response(proc.stdout).text())
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      return { code, byId: Object.fromEntries(out.map((m) => [m.id, m])) };
    };
    const ok = await piped(ALICE);
    expect(ok.code).toBe(0);
    expect(ok.byId[1].result.serverInfo).toBeDefined();
    expect(ok.byId[2].result.tools.some((t: { name: string }) => t.name === "run_python")).toBe(true);
    expect(JSON.parse(ok.byId[3].result.content[0].text).items).toEqual([]);
    // Refused ones too: each request gets its JSON-RPC error before the relay exits.
    const refused = await piped("wrong-token-000000000000");
    expect(refused.code).toBe(0);
    for (const id of [1, 2, 3]) expect(refused.byId[id].error.message).toMatch(/Bay unreachable or refused.*unauthorized/);
  }, 120_000);

  test("a wrong token: requests are answered with an error instead of hanging", async () => {
    const client = new Client({ name: "bay-e2e-stdio-bad", version: "0" });
    const transport = new StdioClientTransport({
      command: "bun",
      args: ["run", join(ROOT, "src/bay/cli.ts"), "mcp", "--url", bay.url],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", BAY_TOKEN: "wrong-token-000000000000" },
      stderr: "pipe",
    });
    let stderr = "";
    transport.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
    });
    clients.push(client);
    const outcome = await client.connect(transport).then(
      () => "connected",
      (e: unknown) => String(e),
    );
    // The relay's own diagnostics go with any other outcome, so a rare one can be told apart.
    expect({ outcome, stderr: /Bay unreachable or refused.*unauthorized/.test(outcome) ? "" : stderr }).toEqual({
      outcome: expect.stringMatching(/Bay unreachable or refused.*unauthorized/),
      stderr: "",
    });
  });
});

test("the access log names MCP and its inner calls by route, never the token", async () => {
  // Bay writes its lines in batches (every LOG_FLUSH_MS): wait for the last ones.
  const access = await pollUntil(
    () => bay.logs.filter((l) => l.msg === "request"),
    (lines) =>
      lines.some((l) => l.route === "/mcp" && l.owner === "alice") &&
      lines.some((l) => l.route === "/v1/sandboxes/:id/python/exec" && l.internal === true),
    5_000,
    "access lines for /mcp and its inner exec",
  ).catch(() => bay.logs.filter((l) => l.msg === "request"));
  expect(access.some((l) => l.route === "/mcp" && l.owner === "alice")).toBe(true);
  expect(access.some((l) => l.route === "/v1/sandboxes/:id/python/exec" && l.internal === true)).toBe(true);
  const all = JSON.stringify(bay.logs);
  expect(all).not.toContain(ALICE);
  expect(all).not.toContain(BOB);
});
