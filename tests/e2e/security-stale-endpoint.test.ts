/**
 * A known weakness, kept as a `test.failing` until it is fixed (it then fails
 * and must become a plain `test`): a stored endpoint that this Bay process has
 * already verified is trusted for the life of the process. After an engine
 * restart — until the next reconcile ends the dead sessions (one reaper beat,
 * 15 s by default) — the port it names may be answered by something that is not
 * a Ship at all: a host process, or another container published on loopback.
 * Ship authenticates Bay, but Bay does not authenticate Ship's answers, and it
 * sends the raw session secret as a bearer token, so that listener
 *
 * * receives the call with its code and the secret (of a session whose container
 *   is gone, so the secret itself opens nothing), and
 * * answers anything it likes, which Bay relays to the owner as the result.
 *
 * The fix the test waits for: Ship proves each answer (an HMAC of a per-call
 * nonce under the session secret, in a response header), Bay sends a token
 * derived from the secret instead of the secret, and an answer without a valid
 * proof is a wrong session (ended, call replayed on a fresh one). The call's
 * own body still reaches such a listener once; only checking /meta before every
 * call would avoid that.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { requireShipImages } from "./support/e2e.ts";

let t: TestBay;
beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay();
});
afterAll(async () => {
  await t?.close();
});

test.failing("a verified session's port answered by a foreign listener: its answer never reaches the owner, nor the secret the listener", async () => {
  const created = await t.json("POST", "/v1/sandboxes", { owner: "alice", body: {} });
  const id = created.body.id as string;
  expect(
    (await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { owner: "alice", body: { code: "owner = 'alice'" } })).body.success,
  ).toBe(true);
  const session = (await t.bay.deps.stores.sandboxes.get(id))!.session!;
  const seen: string[] = [];
  const forged = {
    success: true,
    output: "forged\n",
    error: null,
    data: [],
    execution_count: 1,
    kernel_restarted: false,
    truncated: false,
  };
  const listener = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      seen.push(`${req.headers.get("authorization")} ${await req.text()}`);
      return Response.json(forged);
    },
  });
  try {
    // What an engine restart can leave: the stored endpoint now reaches someone else's listener.
    await t.bay.deps.stores.db.execute({
      sql: "UPDATE sessions SET endpoint = ? WHERE id = ?",
      args: [`http://127.0.0.1:${listener.port}`, session.id],
    });
    const r = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { owner: "alice", body: { code: "print(owner)" } });
    expect(r.status).toBe(200);
    expect(r.body.output).not.toContain("forged");
    expect(seen.join("\n")).not.toContain(session.secret!);
  } finally {
    await listener.stop(true);
  }
});
