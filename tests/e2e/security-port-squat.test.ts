/**
 * Port squatting from inside a sandbox, on a real engine. User code runs as the
 * same uid as PID 1 (tini), so unless PID 1 is protected it can ptrace it: hold
 * it stopped, kill Ship, and keep the container — and its published port — alive
 * with its own listener in Ship's place. That listener then receives whatever
 * Bay sends to the port, including another owner's call (and secret) whose stored
 * endpoint names this port, as after an engine restart hands ports out again,
 * and can answer it with anything.
 *
 * The attack passes only when it fails: once Ship dies the container goes with
 * it (under gVisor after a short teardown, during which no call of Bay's reaches
 * the port), and the other owner's call lands in a fresh session of her own sandbox.
 */
import { expect, test } from "bun:test";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

/** What the hostile tenant runs: seize PID 1, kill Ship, listen on Ship's port, log and answer every request. */
const SQUATTER = `
import ctypes, os, signal, socket, time
log = open("/workspace/squat.log", "a", buffering=1)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 16, 0x4206, 0x4207
log.write("seize %d errno %d\\n" % (libc.ptrace(PTRACE_SEIZE, 1, None, None), ctypes.get_errno()))
log.write("interrupt %d errno %d\\n" % (libc.ptrace(PTRACE_INTERRUPT, 1, None, None), ctypes.get_errno()))
log.write("attach %d errno %d\\n" % (libc.ptrace(PTRACE_ATTACH, 1, None, None), ctypes.get_errno()))
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        if open("/proc/%s/comm" % pid).read().strip() == "ship":
            os.kill(int(pid), signal.SIGKILL)
            log.write("killed ship %s\\n" % pid)
    except OSError:
        pass
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
for _ in range(100):
    try:
        s.bind(("0.0.0.0", 8123))
        break
    except OSError:
        time.sleep(0.1)
s.listen(16)
log.write("listening\\n")
while True:
    c, _ = s.accept()
    log.write("GOT %r\\n" % c.recv(65536))
    c.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 10\\r\\nconnection: close\\r\\n\\r\\n\\"squatted\\"")
    c.close()
`;

async function readySandbox(owner: string, profile = "python-default") {
  const created = await t.json("POST", "/v1/sandboxes", { owner, body: { profile } });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const r = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { owner, body: { code: `owner = "${owner}"` } });
  expect(r.body.success).toBe(true);
  const s = (await t.bay.deps.stores.sandboxes.get(id))!.session!;
  return { id, session: { id: s.id, endpoint: s.endpoint!, secret: s.secret!, containerId: s.containerId! } };
}

/** Marks the test's own probes, which a squatter may log; nothing else may reach it. */
const PROBE = "probe-of-the-test";

/** What answers at an endpoint now: a squatter, a Ship, or nothing. */
async function answerAt(endpoint: string): Promise<"squatted" | "ship" | "nothing"> {
  try {
    const res = await fetch(`${endpoint}/health?${PROBE}`, { signal: AbortSignal.timeout(2_000) });
    const text = await res.text();
    return text.includes("squatted") ? "squatted" : "ship";
  } catch {
    return "nothing";
  }
}

// Under runc PID 1 is an execute-only tini (non-dumpable); gVisor cannot load such a binary,
// runs the readable one, and refuses ptrace of PID 1 itself: both must hold.
for (const profile of ["python-default", "python-gvisor"]) {
  test(`${profile}: user code that kills Ship cannot keep its container to answer at Ship's port, not even another owner's stale call`, async () => {
    const bob = await readySandbox("bob", profile);
    const alice = await readySandbox("alice");
    const write = await t.json("PUT", `/v1/sandboxes/${bob.id}/filesystem/files`, {
      owner: "bob",
      body: { path: "squat.py", content: SQUATTER },
    });
    expect(write.status).toBe(200);
    const started = await t.json("POST", `/v1/sandboxes/${bob.id}/shell/exec`, {
      owner: "bob",
      body: { command: "python3 /workspace/squat.py", background: true },
    });
    expect(started.status).toBe(200);

    // The container must go with its Ship. Under runc it goes at once and nothing ever answers
    // in Ship's place; a gVisor sandbox is torn down a moment after its PID 1 exits, and on a
    // loaded host a listener the user started can answer the test's probe in that moment —
    // what must hold there is that the container still goes and no call of Bay's reaches it.
    let squattedWhileRunning = false;
    const outcome = await pollUntil(
      async () => {
        const state = (await t.bay.driver.containerStatus(bob.session.containerId)).state;
        if (state !== "running") return `container ${state}`;
        if ((await answerAt(bob.session.endpoint)) === "squatted") squattedWhileRunning = true;
        return "pending";
      },
      (v) => v !== "pending",
      60_000,
      "bob's container to exit",
    );
    expect(outcome).toStartWith("container ");
    if (profile === "python-default") expect(squattedWhileRunning).toBe(false);
    expect(await answerAt(bob.session.endpoint)).toBe("nothing");

    // Alice's stored endpoint now names bob's old port, as an engine restart can make it.
    await t.bay.deps.stores.db.execute({
      sql: "UPDATE sessions SET endpoint = ? WHERE id = ?",
      args: [bob.session.endpoint, alice.session.id],
    });
    const ra = await t.json("POST", `/v1/sandboxes/${alice.id}/python/exec`, {
      owner: "alice",
      body: { code: "print(globals().get('owner', 'fresh kernel'))" },
    });
    expect(ra.status).toBe(200);
    expect(JSON.stringify(ra.body)).not.toContain("squatted");
    expect(ra.body.output.trim()).toBe("fresh kernel");

    // Bob's workspace keeps the squatter's log: it held no PID 1, and nothing reached it.
    const log = await t.json("GET", `/v1/sandboxes/${bob.id}/filesystem/files?path=squat.log`, { owner: "bob" });
    expect(log.status).toBe(200);
    expect(log.body.content).toContain("seize -1");
    expect(log.body.content).toContain("attach -1");
    // (Under gVisor the squatter may bind for a moment while its dying sandbox is torn down: only the test's probes reach it.)
    const got = (log.body.content as string).split("\n").filter((l) => l.startsWith("GOT"));
    expect(got.filter((l) => !l.includes(PROBE))).toEqual([]);
    expect(log.body.content).not.toContain(alice.session.secret);
  });
}
