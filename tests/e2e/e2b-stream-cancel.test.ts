/**
 * E2B's Connect streams (Process.Start and Process.Connect) end on Bay's side when
 * the official SDK (e2b 2.51.0, unmodified) leaves them: a foreground command cut by
 * its own `timeoutMs`, a background command's `disconnect()`, a reattach by pid and
 * its `disconnect()`. Against a real Bay process on real Docker whose owners may
 * hold two open streams each (limits.max_open_streams_per_owner): had any stream
 * kept its slot after its client left, the next ones would be refused. First the
 * limit is shown to bite (two held open, a third refused), so the rest can fail.
 * And the deadline as envd keeps it: a command's or terminal's `timeoutMs` ends
 * its stream in TimeoutError (not the exit of the process it killed) and kills
 * the process, also once its client has left, also when the deadline passed before
 * the start was answered; a client that leaves does not kill; a reattach's
 * deadline ends only the reattach; and a deadline is kept with the process in the
 * Ship, so one that passes after its sandbox was stopped starts nothing again.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CommandHandle, Sandbox } from "e2b";
import { type BayProcess, requireShipImages, SHIP_IMAGE, spawnBay } from "./support/e2e.ts";
import { within } from "../support/within.ts";
import { connectFrame } from "../support/connect-frame.ts";

setDefaultTimeout(300_000);

const KEY = `e2b_${"c3".repeat(20)}`;
const ROUNDS = 5;
let bay: BayProcess;
let dir: string;
let sb: Sandbox;
let opts: { apiKey: string; apiUrl: string; sandboxUrl: string };

/** A background command that prints once and then sleeps, with its first output seen. */
async function started(label: string): Promise<CommandHandle> {
  const h = await within(30_000, label, sb.commands.run("echo up; sleep 600", { background: true, timeoutMs: 0 }));
  const until = Date.now() + 30_000;
  while (!h.stdout.includes("up") && Date.now() < until) await Bun.sleep(20);
  expect(h.stdout).toBe("up\n");
  return h;
}

beforeAll(async () => {
  await requireShipImages([SHIP_IMAGE]);
  dir = mkdtempSync(join(tmpdir(), "bay-e2b-cancel-"));
  writeFileSync(
    join(dir, "bay.yaml"),
    [
      "profiles:",
      "  - id: python-default",
      `    image: ${SHIP_IMAGE}`,
      "limits:",
      "  max_open_streams_per_owner: 2",
      "  rate_limit_per_minute: 100000",
      "",
    ].join("\n"),
  );
  bay = await spawnBay({ BAY_AUTH_MODE: "api_key", BAY_API_KEY: KEY, BAY_API_KEY_OWNER: "alice", BAY_CONFIG: join(dir, "bay.yaml") });
  const api = `${bay.url}/e2b`;
  opts = { apiKey: KEY, apiUrl: api, sandboxUrl: api };
  sb = await within(60_000, "create", Sandbox.create(opts));
});

afterAll(async () => {
  if (sb) await Sandbox.kill(sb.sandboxId, opts).catch(() => {});
  await bay?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the limit bites: two streams held open, a third command is refused; leaving one frees its slot", async () => {
  const a = await started("first held");
  const b = await started("second held");
  const third = await within(
    30_000,
    "third",
    sb.commands.run("echo three", { timeoutMs: 10_000 }).catch((e: unknown) => e),
  );
  expect(String(third)).toMatch(/resource_exhausted|too many|429|limit/i);
  await a.disconnect();
  await b.disconnect();
  const r = await within(30_000, "after leaving", sb.commands.run("echo free"));
  expect(r.stdout).toBe("free\n");
  await sb.commands.kill(a.pid);
  await sb.commands.kill(b.pid);
});

test(`foreground commands cut by their own timeoutMs end in TimeoutError, are killed, and give their slots back (${ROUNDS} in a row, limit 2)`, async () => {
  for (let i = 0; i < ROUNDS; i++) {
    const err = await within(
      30_000,
      `timed-out run ${i}`,
      sb.commands.run(`echo round${i}; sleep 600`, { timeoutMs: 1_000 }).catch((e: unknown) => e),
    );
    // As with envd: the call's deadline error, not the exit of the process it killed.
    expect(`${i}: ${(err as Error)?.name}`).toBe(`${i}: TimeoutError`);
  }
  // Killed at their deadline, as envd kills them (a client that merely leaves does not kill).
  const until = Date.now() + 10_000;
  const timedOut = async () =>
    (await within(10_000, "list", sb.commands.list())).filter((p) => [p.cmd, ...p.args].join(" ").includes("round")).length;
  while ((await timedOut()) > 0 && Date.now() < until) await Bun.sleep(100);
  expect(await timedOut()).toBe(0);
  const r = await within(30_000, "after the timeouts", sb.commands.run("echo ok"));
  expect(r.stdout).toBe("ok\n");
});

test(`background commands and reattaches left by disconnect() give their slots back (${ROUNDS} of each, limit 2)`, async () => {
  const pids: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const h = await started(`background ${i}`);
    pids.push(h.pid);
    await h.disconnect();
  }
  // The processes run on after their clients left (E2B's disconnect does not kill).
  const listed = (await within(10_000, "list", sb.commands.list())).map((p) => p.pid);
  for (const pid of pids) expect(listed).toContain(pid);
  for (let i = 0; i < ROUNDS; i++) {
    const again = await within(30_000, `connect ${i}`, sb.commands.connect(pids[i % pids.length]!));
    const until = Date.now() + 30_000;
    while (!again.stdout.includes("up") && Date.now() < until) await Bun.sleep(20);
    expect(again.stdout).toBe("up\n");
    await again.disconnect();
  }
  const r = await within(30_000, "after the disconnects", sb.commands.run("echo still"));
  expect(r.stdout).toBe("still\n");
  for (const pid of pids) expect(await within(10_000, `kill ${pid}`, sb.commands.kill(pid))).toBe(true);
});

test("a terminal (pty) past its timeoutMs is hung up and its wait ends in TimeoutError", async () => {
  const term = await within(30_000, "pty", sb.pty.create({ cols: 80, rows: 24, timeoutMs: 1_500, onData: () => {} }));
  const end = await within(
    30_000,
    "pty wait",
    term.wait().catch((e: unknown) => e),
  );
  expect((end as Error)?.name).toBe("TimeoutError");
  const until = Date.now() + 10_000;
  const open = async () => (await within(10_000, "list", sb.commands.list())).filter((p) => p.pid === term.pid).length;
  while ((await open()) > 0 && Date.now() < until) await Bun.sleep(100);
  expect(await open()).toBe(0);
});

test("a background command whose client left is still killed at its timeoutMs (envd's procCtx), not before", async () => {
  const h = await within(30_000, "background", sb.commands.run("echo up; sleep 600", { background: true, timeoutMs: 2_000 }));
  const seen = Date.now() + 30_000;
  while (!h.stdout.includes("up") && Date.now() < seen) await Bun.sleep(20);
  await h.disconnect();
  const running = async () => (await within(10_000, "list", sb.commands.list())).some((p) => p.pid === h.pid);
  expect(await running()).toBe(true);
  const until = Date.now() + 15_000;
  while ((await running()) && Date.now() < until) await Bun.sleep(100);
  expect(await running()).toBe(false);
});

/** A raw Process.Start of `script` on `on` with Connect-Timeout-Ms `timeoutMs`; `signal` to leave it. */
function rawStart(on: Sandbox, timeoutMs: number, script: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${bay.url}/e2b/process.Process/Start`, {
    method: "POST",
    headers: {
      "content-type": "application/connect+json",
      "connect-timeout-ms": String(timeoutMs),
      "e2b-sandbox-id": on.sandboxId,
      "x-access-token": (on as unknown as { envdAccessToken: string }).envdAccessToken,
    },
    body: connectFrame({ process: { cmd: "/bin/bash", args: ["-c", script] } }),
    ...(signal ? { signal } : {}),
  });
}

test("a Connect-Timeout-Ms past what a timer holds (~24.8 days) is refused as invalid, the command never run (it would be killed at once)", async () => {
  const start = (timeoutMs: number, file: string) => rawStart(sb, timeoutMs, `echo ran > ${file}`).then((r) => r.text());
  expect(await within(30_000, "huge", start(2 ** 31, "huge"))).toContain("invalid_argument");
  expect(await within(30_000, "longest", start(2 ** 31 - 1, "longest"))).toContain('"status":"exit status 0"');
  expect(await sb.files.exists("/home/user/huge")).toBe(false);
  expect(await sb.files.read("/home/user/longest")).toBe("ran\n");
});

/** Processes of `on` whose command line contains `marker`. */
const running = async (on: Sandbox, marker: string) =>
  (await within(10_000, "list", on.commands.list())).filter((p) => [p.cmd, ...p.args].join(" ").includes(marker));

test("a deadline shorter than the start itself still kills what was started; nothing outlives it", async () => {
  for (let i = 0; i < 12; i++) {
    const res = await within(30_000, `short ${i}`, rawStart(sb, 2 + 4 * i, "sleep 600 # short-deadline"));
    expect(await res.text()).toContain("deadline_exceeded");
  }
  const until = Date.now() + 10_000;
  while ((await running(sb, "short-deadline")).length > 0 && Date.now() < until) await Bun.sleep(100);
  expect(await running(sb, "short-deadline")).toEqual([]);
});

test("a reattach (commands.connect) past its timeoutMs ends in TimeoutError and leaves the process running", async () => {
  const h = await started("to reattach");
  await h.disconnect();
  const again = await within(30_000, "connect", sb.commands.connect(h.pid, { timeoutMs: 1_000 }));
  const end = await within(
    30_000,
    "reattached wait",
    again.wait().catch((e: unknown) => e),
  );
  expect((end as Error)?.name).toBe("TimeoutError");
  expect((await within(10_000, "list", sb.commands.list())).some((p) => p.pid === h.pid)).toBe(true);
  expect(await within(10_000, "kill", sb.commands.kill(h.pid))).toBe(true);
});

test("a deadline that passes after its sandbox was stopped does not start the sandbox again", async () => {
  const other = await within(60_000, "create", Sandbox.create(opts));
  try {
    // Started first: on a loaded machine the runtime's cold start alone can pass the 3 s deadline below.
    await within(60_000, "first command", other.commands.run("true"));
    const h = await within(30_000, "background", other.commands.run("echo up; sleep 600", { background: true, timeoutMs: 3_000 }));
    await h.disconnect();
    const auth = { authorization: `Bearer ${KEY}` };
    const stop = await fetch(`${bay.url}/v1/sandboxes/${other.sandboxId}/stop`, { method: "POST", headers: auth });
    expect(stop.status).toBeLessThan(300);
    await Bun.sleep(4_500);
    const sbx = (await (await fetch(`${bay.url}/v1/sandboxes/${other.sandboxId}`, { headers: auth })).json()) as { status: string };
    expect(sbx.status).not.toBe("ready");
    expect(sbx.status).not.toBe("starting");
  } finally {
    await Sandbox.kill(other.sandboxId, opts).catch(() => {});
  }
});
