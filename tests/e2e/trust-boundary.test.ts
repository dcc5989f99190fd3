/**
 * The trust boundary between Bay and its Ships, attacked on a real engine. Each
 * test is an attack that passes only when it fails:
 *
 * * a local process calls a Ship's published port without, or with a wrong,
 *   session secret;
 * * a stored endpoint that now belongs to another owner's Ship (as after an
 *   engine restart hands ports out again) — forced here by swapping two ready
 *   sessions' endpoints in the database — never receives a call;
 * * the secret is looked for wherever user code or a client could see it: the
 *   environment of shell, Python and background processes, every /proc entry
 *   user code can read (PID 1's environ, Ship's environ and memory), Bay's logs
 *   and every response body, and the container's configuration.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLogger } from "../../src/bay/logger.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { docker, requireShipImages } from "./support/e2e.ts";

let t: TestBay;
const lines: string[] = [];
const bodies: string[] = [];

beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay({ logger: createLogger("debug", (l) => lines.push(l)) });
});
afterAll(async () => {
  await t?.close();
});

/** A JSON call as `owner` whose raw body is kept for the leak checks. */
async function call(method: string, path: string, owner: string, body?: unknown) {
  const r = await t.json(method, path, { owner, ...(body !== undefined ? { body } : {}) });
  bodies.push(JSON.stringify(r.body));
  return r;
}

async function readySandbox(
  owner: string,
): Promise<{ id: string; session: { id: string; endpoint: string; secret: string; containerId: string } }> {
  const created = await call("POST", "/v1/sandboxes", owner, {});
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  expect((await call("POST", `/v1/sandboxes/${id}/python/exec`, owner, { code: `owner = "${owner}"` })).body.success).toBe(true);
  const sb = await t.bay.deps.stores.sandboxes.get(id);
  const s = sb!.session!;
  return { id, session: { id: s.id, endpoint: s.endpoint!, secret: s.secret!, containerId: s.containerId! } };
}

describe("Ship trusts only its own session", () => {
  test("a local process at the published port gets 401 on every route but /health without the exact secret", async () => {
    const { session } = await readySandbox("alice");
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer " },
      { authorization: `Bearer ${session.secret.slice(0, -1)}` },
      { authorization: `Bearer ${session.secret}A` },
      { authorization: `Bearer ${"A".repeat(session.secret.length)}` },
      { authorization: `Basic ${btoa(`x:${session.secret}`)}` },
      { "x-ship-token": session.secret },
    ];
    for (const headers of attempts) {
      for (const [method, path, body] of [
        ["POST", "/shell/exec", { command: "id" }],
        ["POST", "/ipython/exec", { code: "owner" }],
        ["GET", "/filesystem/directories", undefined],
        ["GET", "/meta", undefined],
      ] as const) {
        const res = await fetch(`${session.endpoint}${path}`, {
          method,
          headers: { ...headers, "content-type": "application/json" },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        expect([path, res.status]).toEqual([path, 401]);
        expect(text).not.toContain("alice");
      }
    }
    expect((await fetch(`${session.endpoint}/health`)).status).toBe(200);
    // The right secret works (this is what Bay sends), so the refusals above were about the secret.
    const ok = await fetch(`${session.endpoint}/meta`, { headers: { authorization: `Bearer ${session.secret}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { session: { id: string } }).session.id).toBe(session.id);
  });

  test("endpoints swapped between two owners' ready sessions: each owner's next call lands in its own sandbox", async () => {
    const a = await readySandbox("alice");
    const b = await readySandbox("bob");
    const { db } = t.bay.deps.stores;
    // What an engine restart can do: each stored endpoint now reaches the other owner's Ship.
    await db.execute({ sql: "UPDATE sessions SET endpoint = ? WHERE id = ?", args: [b.session.endpoint, a.session.id] });
    await db.execute({ sql: "UPDATE sessions SET endpoint = ? WHERE id = ?", args: [a.session.endpoint, b.session.id] });

    const ra = await call("POST", `/v1/sandboxes/${a.id}/python/exec`, "alice", { code: "print(globals().get('owner', 'fresh kernel'))" });
    const rb = await call("POST", `/v1/sandboxes/${b.id}/shell/exec`, "bob", {
      command: "echo bob-was-here > /workspace/mark.txt; cat /workspace/mark.txt",
    });
    expect(ra.status).toBe(200);
    expect(ra.body.output.trim()).not.toBe("bob");
    expect(rb.status).toBe(200);
    expect(rb.body.output.trim()).toBe("bob-was-here");
    // Bob's write is in bob's workspace, not alice's.
    const aliceSees = await call("POST", `/v1/sandboxes/${a.id}/shell/exec`, "alice", {
      command: "cat /workspace/mark.txt 2>&1 || echo absent",
    });
    expect(aliceSees.body.output).toContain("absent");
    // The misdirected sessions were replaced, not trusted.
    const sa = (await t.bay.deps.stores.sandboxes.get(a.id))!.session!;
    const sb = (await t.bay.deps.stores.sandboxes.get(b.id))!.session!;
    expect(sa.id).not.toBe(a.session.id);
    expect(sb.id).not.toBe(b.session.id);
    expect((await t.bay.deps.stores.sessions.get(a.session.id))!.status).toBe("failed");
  });

  test("a stored endpoint is checked on first use by a new Bay process before it is trusted", async () => {
    const a = await readySandbox("alice");
    const b = await readySandbox("bob");
    // A second Bay on the same database (a restart, or another replica) has verified nothing yet.
    const t2 = await createTestBay({ dbPath: `${t.dir}/bay.db`, instanceId: t.bay.instanceId });
    try {
      await t2.bay.deps.stores.db.execute({
        sql: "UPDATE sessions SET endpoint = ? WHERE id = ?",
        args: [b.session.endpoint, a.session.id],
      });
      const r = await t2.json("POST", `/v1/sandboxes/${a.id}/python/exec`, {
        owner: "alice",
        body: { code: "print(globals().get('owner', 'fresh kernel'))" },
      });
      expect(r.status).toBe(200);
      expect(r.body.output.trim()).toBe("fresh kernel");
      // Bob's kernel never ran alice's code: its state is untouched.
      const rb = await t2.json("POST", `/v1/sandboxes/${b.id}/python/exec`, { owner: "bob", body: { code: "print(owner)" } });
      expect(rb.body.output.trim()).toBe("bob");
    } finally {
      await t2.bay.close();
    }
  });
});

describe("the session secret is nowhere user code or a client can read it", () => {
  test("not in the environment of shell, background processes or Python, nor in any /proc entry user code can read", async () => {
    const { id, session } = await readySandbox("carol");
    const s = session.secret;
    const sh = (_t: TestBay, sid: string, body: { command: string }) => call("POST", `/v1/sandboxes/${sid}/shell/exec`, "carol", body);
    const py = (_t: TestBay, sid: string, code: string) => call("POST", `/v1/sandboxes/${sid}/python/exec`, "carol", { code });
    const env = await call("POST", `/v1/sandboxes/${id}/shell/exec`, "carol", { command: "env; cat /proc/self/environ | tr '\\0' '\\n'" });
    expect(env.body.output).toContain("HOME=/workspace");
    expect(env.body.output).not.toContain(s);
    const bg = await call("POST", `/v1/sandboxes/${id}/shell/exec`, "carol", { command: "env > /workspace/bg-env.txt", background: true });
    expect(bg.status).toBe(200);
    // Bounded wait for the background command to have written its environment (no fixed sleep).
    const bgEnv = await sh(t, id, {
      command: "timeout 60 sh -c 'until grep -q ^HOME= /workspace/bg-env.txt 2>/dev/null; do sleep 0.1; done'; cat /workspace/bg-env.txt",
    });
    expect(bgEnv.body.output).toContain("HOME=");
    expect(bgEnv.body.output).not.toContain(s);
    const pyEnv = await py(t, id, "import os; print(dict(os.environ))");
    expect(pyEnv.body.output).toContain("HOME");
    expect(pyEnv.body.output).not.toContain(s);
    // Everything under /proc that uid 1000 may read: environ and cmdline of every process. (The
    // scan runs in Python: the secret reaches the kernel as code on a pipe, never in a /proc entry.)
    const scan = await py(
      t,
      id,
      [
        "import glob",
        `needle = ${JSON.stringify(s)}.encode()`,
        "hits, read = [], 0",
        "for f in glob.glob('/proc/[0-9]*/environ') + glob.glob('/proc/[0-9]*/cmdline'):",
        "    try:",
        "        data = open(f, 'rb').read()",
        "        read += 1",
        "    except OSError:",
        "        continue",
        "    if needle in data: hits.append(f)",
        "print(read > 0, hits)",
      ].join("\n"),
    );
    expect(scan.body.output.trim()).toBe("True []");
    const ship = await sh(t, id, {
      command: "pid=$(pgrep -x ship | head -1); echo pid=$pid; head -c 1 /proc/$pid/environ 2>&1; head -c 1 /proc/$pid/mem 2>&1; true",
    });
    expect(ship.body.output).toMatch(/pid=\d+/);
    expect(ship.body.output).toMatch(/Permission denied/);
    const gdbLike = await py(
      t,
      id,
      [
        "import subprocess, re",
        "pid = subprocess.check_output(['pgrep', '-x', 'ship']).split()[0].decode()",
        "found = False",
        "try:",
        "    maps = open(f'/proc/{pid}/maps').read()",
        "    mem = open(f'/proc/{pid}/mem', 'rb')",
        "    found = 'readable'",
        "except OSError as e:",
        "    found = type(e).__name__",
        "print(found)",
      ].join("\n"),
    );
    expect(gdbLike.body.output.trim()).toBe("PermissionError");
  });

  test("not in the container's configuration, Bay's logs or any response", async () => {
    const { session } = await readySandbox("dave");
    const info = await docker.getContainer(session.containerId).inspect();
    const config = JSON.stringify({
      env: info.Config.Env,
      cmd: info.Config.Cmd,
      labels: info.Config.Labels,
      entry: info.Config.Entrypoint,
    });
    expect(config).not.toContain(session.secret);
    expect(info.Config.Env).toContain("SHIP_CREDENTIALS=stdin");
    const logs = lines.join("\n");
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(session.secret);
    const containerLogs = await t.bay.driver.containerLogs(session.containerId, 1000);
    expect(containerLogs).toContain(session.id);
    expect(containerLogs).not.toContain(session.secret);
    for (const body of bodies) expect(body).not.toContain(session.secret);
    const list = await call("GET", "/v1/sandboxes", "dave");
    expect(JSON.stringify(list.body)).not.toContain(session.secret);
  });
});
