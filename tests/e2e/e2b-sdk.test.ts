/**
 * Conformance of Bay's E2B-compatible API with the official SDKs, unmodified:
 * e2b 2.51.0 (v2 paths), e2b 2.7.0 as `e2b-legacy` (the oldest SDK that reads
 * both E2B_API_URL and E2B_SANDBOX_URL; it creates with POST /sandboxes) and @e2b/code-interpreter 2.8.0, against a real Bay on
 * Docker, configured only through E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY.
 * Every SDK call runs under a watchdog, so a hang fails the test instead of
 * stalling the run. Hostile cases: another owner's sandbox, wrong or missing
 * access tokens, broken Connect frames, paths outside the home. The code
 * interpreter, its contexts, variables and the legacy SDK: e2b-code-interpreter.test.ts.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { CommandExitError, Sandbox } from "e2b";
import { within } from "../support/within.ts";
import { ALICE_KEY, bay, malloryKey, api, created, newSandbox, useE2bBay } from "./support/e2b-sdk.ts";

useE2bBay();

describe("control plane (e2b 2.51.0)", () => {
  test("create, info, list with metadata and paging, timeout both ways, connect, pause refused, kill", async () => {
    const a = await within(60_000, "create a", Sandbox.create({ metadata: { suite: "e2b", n: "1" }, timeoutMs: 600_000 }));
    const b = await within(60_000, "create b", Sandbox.create({ metadata: { suite: "e2b", n: "2" } }));
    created.push(a.sandboxId, b.sandboxId);
    const info = await within(10_000, "getInfo", a.getInfo());
    expect(info.templateId).toBe("base");
    expect(info.metadata).toEqual({ suite: "e2b", n: "1" });
    expect(info.state).toBe("running");
    expect(info.endAt.getTime() - info.startedAt.getTime()).toBeGreaterThan(590_000);

    const mine = await within(10_000, "list", Sandbox.list({ query: { metadata: { suite: "e2b", n: "2" } } }).nextItems());
    expect(mine.map((s) => s.sandboxId)).toEqual([b.sandboxId]);
    const pager = Sandbox.list({ limit: 1, query: { metadata: { suite: "e2b" } } });
    const first = await within(10_000, "page 1", pager.nextItems());
    expect(first).toHaveLength(1);
    expect(pager.hasNext).toBe(true);
    const second = await within(10_000, "page 2", pager.nextItems());
    expect(second).toHaveLength(1);
    expect(new Set([first[0]!.sandboxId, second[0]!.sandboxId])).toEqual(new Set([a.sandboxId, b.sandboxId]));
    expect(await within(10_000, "paused list", Sandbox.list({ query: { state: ["paused"] } }).nextItems())).toEqual([]);

    // An absolute deadline: it may shorten as well as lengthen.
    await within(10_000, "setTimeout", a.setTimeout(30_000));
    const shorter = await a.getInfo();
    expect(shorter.endAt.getTime()).toBeLessThan(info.endAt.getTime());
    expect(shorter.endAt.getTime() - Date.now()).toBeLessThan(35_000);
    // connect only lengthens.
    const again = await within(30_000, "connect", Sandbox.connect(a.sandboxId, { timeoutMs: 120_000 }));
    expect((await again.getInfo()).endAt.getTime()).toBeGreaterThan(shorter.endAt.getTime());

    await expect(within(10_000, "pause", a.pause())).rejects.toThrow(/cannot pause/);
    expect(await within(10_000, "kill", b.kill())).toBe(true);
    expect(await within(10_000, "kill again", Sandbox.kill(b.sandboxId))).toBe(false);
    await expect(within(10_000, "info after kill", Sandbox.getInfo(b.sandboxId))).rejects.toThrow(/not found/i);
  });

  test("getMetrics: the running sandbox's CPU, memory and disk, sampled every interval (1 s here)", async () => {
    const sb = await newSandbox();
    await within(60_000, "run", sb.commands.run("head -c 2000000 /dev/zero > two-mb.bin"));
    // A second of busy CPU between samples, then a few quiet intervals.
    await within(60_000, "busy", sb.commands.run("timeout 1.5 sh -c 'while :; do :; done' || true"));
    await Bun.sleep(3500);
    const metrics = await within(30_000, "getMetrics", sb.getMetrics());
    expect(metrics.length).toBeGreaterThanOrEqual(3);
    const times = metrics.map((s) => s.timestamp.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBe(times.length);
    expect(Math.max(...metrics.map((s) => s.cpuUsedPct))).toBeGreaterThan(20);
    const m = metrics.at(-1)!;
    expect(m.timestamp).toBeInstanceOf(Date);
    expect(Math.abs(m.timestamp.getTime() - Date.now())).toBeLessThan(60_000);
    expect(m.cpuCount).toBeGreaterThan(0);
    expect(m.memUsed).toBeGreaterThan(0);
    expect(m.memUsed).toBeLessThan(m.memTotal);
    // The SDK reads memCache too: the file just written is in the page cache.
    expect(m.memCache).toBeGreaterThanOrEqual(2_000_000);
    expect(m.memCache).toBeLessThan(m.memTotal);
    // The disk is the workspace's last measurement (taken again about once a minute).
    expect(m.diskUsed).toBeGreaterThanOrEqual(0);
    expect(m.diskTotal).toBeGreaterThan(m.diskUsed);
    const later = await within(30_000, "window", Sandbox.getMetrics(sb.sandboxId, { start: new Date(Date.now() + 3_600_000) }));
    expect(later).toEqual([]);
    const from = metrics[1]!.timestamp;
    const since = await within(30_000, "since", Sandbox.getMetrics(sb.sandboxId, { start: from, end: metrics.at(-1)!.timestamp }));
    expect(since.map((s) => s.timestamp.getTime())).toEqual(times.slice(1));
  }, 90_000);

  test("GET /templates/{id}, /health and E2B's error shape on these routes only", async () => {
    const tpl = await fetch(`${api}/templates/code-interpreter-v1`, { headers: { "X-API-Key": ALICE_KEY } });
    expect(tpl.status).toBe(200);
    expect((await tpl.json()).templateID).toBe("code-interpreter-v1");
    const unknown = await fetch(`${api}/templates/nope`, { headers: { "X-API-Key": ALICE_KEY } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ code: 404, message: expect.stringContaining("nope") });
    const noKey = await fetch(`${api}/v2/sandboxes`);
    expect(noKey.status).toBe(401);
    expect((await noKey.json()).code).toBe(401);
    expect((await fetch(`${api}/health`)).status).toBe(200);
    // The legacy list (older SDKs) is a plain array of the owner's sandboxes.
    const legacyList = await fetch(`${api}/sandboxes`, { headers: { "X-API-Key": ALICE_KEY } });
    expect(legacyList.status).toBe(200);
    expect(Array.isArray(await legacyList.json())).toBe(true);
    // Bay's own routes keep Bay's error body.
    const own = await fetch(`${bay.url}/v1/sandboxes`);
    expect((await own.json()).error.code).toBe("unauthorized");
  });
});

describe("envd (e2b 2.51.0)", () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await newSandbox();
  });

  test("commands: output, exit codes, env, cwd, onStdout before the command ends", async () => {
    const ok = await within(60_000, "run", sb.commands.run("echo out; echo err >&2; echo $GREETING; pwd", { envs: { GREETING: "hi" } }));
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toBe("out\nhi\n/workspace\n");
    expect(ok.stderr).toBe("err\n");
    const failed = await within(
      30_000,
      "failing run",
      sb.commands.run("exit 7").catch((e) => e),
    );
    expect(failed).toBeInstanceOf(CommandExitError);
    expect((failed as CommandExitError).exitCode).toBe(7);

    // The first chunk arrives while the command still runs: it prints, then waits for a file.
    const seen: string[] = [];
    const done = sb.commands.run("echo first; while [ ! -e gate ]; do sleep 0.1; done; echo second", {
      onStdout: (d) => void seen.push(d),
      timeoutMs: 60_000,
    });
    const deadline = Date.now() + 30_000;
    while (!seen.join("").includes("first") && Date.now() < deadline) await Bun.sleep(50);
    expect(seen.join("")).toBe("first\n");
    await within(30_000, "open gate", sb.files.write("gate", ""));
    const r = await within(30_000, "gated run", done);
    expect(r.stdout).toBe("first\nsecond\n");
  });

  test("a background command is listed, reattached by pid with its output replayed, and killed", async () => {
    const h = await within(30_000, "background", sb.commands.run("echo one; sleep 1; echo two; sleep 600", { background: true }));
    const deadline = Date.now() + 30_000;
    while (!h.stdout.includes("two") && Date.now() < deadline) await Bun.sleep(50);
    await h.disconnect();
    const listed = await within(10_000, "list", sb.commands.list());
    expect(listed.map((p) => p.pid)).toContain(h.pid);
    const again = await within(30_000, "connect", sb.commands.connect(h.pid));
    const until = Date.now() + 30_000;
    while (!again.stdout.includes("two") && Date.now() < until) await Bun.sleep(50);
    expect(again.stdout).toBe("one\ntwo\n");
    expect(await within(10_000, "kill", sb.commands.kill(h.pid))).toBe(true);
    const end = await within(
      30_000,
      "wait",
      again.wait().catch((e) => e),
    );
    expect(end).toBeInstanceOf(CommandExitError);
  });

  test("files: write, read text and bytes, list, makeDir, rename, remove, exists, /home/user is /workspace", async () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    await within(30_000, "write bytes", sb.files.write("/home/user/data/bin.dat", bytes.buffer));
    expect(await within(30_000, "read bytes", sb.files.read("data/bin.dat", { format: "bytes" }))).toEqual(bytes);
    await within(30_000, "write text", sb.files.write("notes.txt", "héllo"));
    expect(await sb.files.read("/home/user/notes.txt")).toBe("héllo");
    expect((await sb.commands.run("cat /workspace/notes.txt")).stdout).toBe("héllo");

    expect(await within(30_000, "makeDir", sb.files.makeDir("/home/user/a/b"))).toBe(true);
    expect(await sb.files.makeDir("/home/user/a/b")).toBe(false);
    const entries = await within(30_000, "list", sb.files.list("/home/user", { depth: 2 }));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get("/home/user/data/bin.dat")).toMatchObject({ name: "bin.dat", type: "file", size: 256 });
    expect(byPath.get("/home/user/a/b")).toMatchObject({ type: "dir" });
    expect(byPath.get("/home/user/notes.txt")?.permissions).toBe("-rw-r--r--");

    const moved = await within(30_000, "rename", sb.files.rename("notes.txt", "/home/user/a/notes2.txt"));
    expect(moved.path).toBe("/home/user/a/notes2.txt");
    expect(await sb.files.exists("notes.txt")).toBe(false);
    expect((await sb.files.getInfo("a/notes2.txt")).size).toBe(Buffer.byteLength("héllo"));
    await within(30_000, "remove", sb.files.remove("/home/user/a"));
    expect(await sb.files.exists("a/notes2.txt")).toBe(false);
  });

  test("signed uploadUrl / downloadUrl work at the origin root; a tampered signature is refused", async () => {
    const up = await sb.uploadUrl("/home/user/signed.txt");
    expect(new URL(up).pathname).toBe("/files");
    const put = new FormData();
    put.append("file", new Blob(["signed bytes"]), "signed.txt");
    const res = await fetch(up, { method: "POST", body: put });
    expect(res.status).toBe(200);
    const down = await sb.downloadUrl("/home/user/signed.txt", { useSignatureExpiration: 60 });
    const got = await fetch(down);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe("signed bytes");
    const tampered = new URL(down);
    tampered.searchParams.set("path", "/home/user/other.txt");
    const refused = await fetch(tampered);
    expect(refused.status).toBe(401);
    expect((await refused.json()).code).toBe(401);
  });

  test("odd paths: outside the home, escapes and root are refused before any work", async () => {
    await expect(within(10_000, "read /etc", sb.files.read("/etc/passwd"))).rejects.toThrow(/outside/);
    await expect(within(10_000, "escape", sb.files.list("/home/user/../../etc"))).rejects.toThrow(/invalid path/);
    await expect(within(10_000, "root user", sb.commands.run("id", { user: "root" }))).rejects.toThrow(/unprivileged/);
  });
});

describe("interactive envd (e2b 2.51.0): stdin, pty, watch", () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await newSandbox();
  });

  test("envd 0.5.7: stdin written and closed, the command sees EOF", async () => {
    expect((await sb.getInfo()).envdVersion).toBe("0.5.7");
    const h = await within(30_000, "cat", sb.commands.run("cat; echo done", { background: true, stdin: true }));
    await within(30_000, "sendStdin", sb.commands.sendStdin(h.pid, "ping\n"));
    const deadline = Date.now() + 30_000;
    while (!h.stdout.includes("ping") && Date.now() < deadline) await Bun.sleep(50);
    expect(h.stdout).toBe("ping\n");
    await within(30_000, "closeStdin", sb.commands.closeStdin(h.pid));
    const r = await within(30_000, "wait", h.wait());
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("ping\ndone\n");
  });

  test("pty: keystrokes in, output out, resize, exit", async () => {
    let out = "";
    const dec = new TextDecoder();
    const t = await within(
      60_000,
      "pty.create",
      sb.pty.create({ cols: 80, rows: 24, timeoutMs: 120_000, onData: (d) => void (out += dec.decode(d, { stream: true })) }),
    );
    const waitFor = async (text: string) => {
      const until = Date.now() + 30_000;
      while (!out.includes(text) && Date.now() < until) await Bun.sleep(50);
      expect(out).toContain(text);
    };
    await within(10_000, "input", sb.pty.sendInput(t.pid, new TextEncoder().encode("stty size\n")));
    await waitFor("24 80");
    await within(10_000, "resize", sb.pty.resize(t.pid, { cols: 100, rows: 30 }));
    await within(10_000, "input 2", sb.pty.sendInput(t.pid, new TextEncoder().encode("stty size; exit 3\n")));
    await waitFor("30 100");
    const end = await within(
      30_000,
      "pty wait",
      t.wait().catch((e) => e),
    );
    expect((end as CommandExitError).exitCode).toBe(3);
  });

  test("watchDir reports a file created and written in the watched directory", async () => {
    await sb.files.makeDir("/home/user/watched");
    const seen: Array<{ name: string; type: string }> = [];
    const w = await within(
      30_000,
      "watchDir",
      sb.files.watchDir("/home/user/watched", (e) => void seen.push({ name: e.name, type: e.type })),
    );
    await within(30_000, "write", sb.files.write("/home/user/watched/a.txt", "x"));
    const until = Date.now() + 30_000;
    while (!seen.some((e) => e.name === "a.txt") && Date.now() < until) await Bun.sleep(50);
    await w.stop();
    expect(seen.some((e) => e.name === "a.txt" && (e.type === "create" || e.type === "write"))).toBe(true);
  });
});

describe("trust boundary on the E2B routes", () => {
  test("another owner's sandbox is not found; wrong or missing access tokens are refused", async () => {
    const sb = await newSandbox();
    const opts = { apiKey: malloryKey };
    await expect(within(10_000, "foreign info", Sandbox.getInfo(sb.sandboxId, opts))).rejects.toThrow(/not found/i);
    await expect(within(10_000, "foreign connect", Sandbox.connect(sb.sandboxId, opts))).rejects.toThrow(/not found/i);
    expect(await within(10_000, "foreign kill", Sandbox.kill(sb.sandboxId, opts))).toBe(false);
    expect(await within(10_000, "foreign list", Sandbox.list(opts).nextItems())).toEqual([]);

    const call = (token?: string) =>
      fetch(`${api}/filesystem.Filesystem/ListDir`, {
        method: "POST",
        headers: { "content-type": "application/json", "e2b-sandbox-id": sb.sandboxId, ...(token ? { "x-access-token": token } : {}) },
        body: JSON.stringify({ path: "/home/user", depth: 1 }),
      });
    for (const token of [undefined, "ea_wrong", "x".repeat(300)]) {
      const res = await call(token);
      expect(res.status).toBe(401);
      expect((await res.json()).code).toBe("unauthenticated");
    }
    // A token is bound to its sandbox: another sandbox's token opens nothing.
    const other = await newSandbox();
    const otherToken = (other as unknown as { envdAccessToken: string }).envdAccessToken;
    expect((await call(otherToken)).status).toBe(401);
    // Basic auth on the data plane never reaches Bay's Bearer auth.
    const basic = await fetch(`${api}/filesystem.Filesystem/ListDir`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "e2b-sandbox-id": sb.sandboxId,
        "x-access-token": (sb as unknown as { envdAccessToken: string }).envdAccessToken,
        authorization: `Basic ${btoa("user:")}`,
      },
      body: JSON.stringify({ path: "/home/user" }),
    });
    expect(basic.status).toBe(200);
  });

  test("a running command's stream ends when its sandbox is killed (the SDK does not hang)", async () => {
    const sb = await newSandbox();
    let started = false;
    const run = sb.commands.run("echo up; sleep 600", { timeoutMs: 0, onStdout: () => void (started = true) });
    const settled = run.then(
      () => "resolved",
      (e: unknown) => `rejected: ${String(e)}`,
    );
    const until = Date.now() + 30_000;
    while (!started && Date.now() < until) await Bun.sleep(50);
    expect(started).toBe(true);
    await within(30_000, "kill", Sandbox.kill(sb.sandboxId));
    expect(await within(30_000, "stream end after kill", settled)).toMatch(/^rejected/);
  });

  test("broken Connect frames end in an error, and Bay keeps serving", async () => {
    const sb = await newSandbox();
    const token = (sb as unknown as { envdAccessToken: string }).envdAccessToken;
    const headers = { "content-type": "application/connect+json", "e2b-sandbox-id": sb.sandboxId, "x-access-token": token };
    const frame = (flags: number, length: number, payload: Uint8Array) => {
      const out = new Uint8Array(5 + payload.length);
      out[0] = flags;
      new DataView(out.buffer).setUint32(1, length);
      out.set(payload, 5);
      return out;
    };
    const json = new TextEncoder().encode(JSON.stringify({ process: { cmd: "/bin/true" } }));
    const cases = {
      truncated: frame(0, json.length + 50, json),
      oversized: frame(0, 0xffffffff, json.slice(0, 8)),
      garbage: frame(0, 5, new TextEncoder().encode("{{{{{")),
      empty: new Uint8Array(),
    };
    for (const [name, body] of Object.entries(cases)) {
      const res = await within(15_000, `frame ${name}`, fetch(`${api}/process.Process/Start`, { method: "POST", headers, body }));
      const text = await within(15_000, `frame ${name} body`, res.text());
      // An end-of-stream frame carrying an error (never a started process).
      expect(`${name}: ${text}`).toMatch(/^\w+: \u0002[\s\S]{4}\{"error":\{"code":"(invalid_argument|resource_exhausted|unimplemented)"/);
    }
    expect((await within(60_000, "still serving", sb.commands.run("echo alive"))).stdout).toBe("alive\n");
  });
});
