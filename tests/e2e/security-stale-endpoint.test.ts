/**
 * A stored endpoint that this Bay process has already verified, answered after an
 * engine restart by something that is not the session's Ship (a host process, or
 * another container published on loopback on the old port). Bay sends a key
 * derived from the session secret and takes no answer without Ship's proof of the
 * call's nonce (src/protocol/ship/auth.ts), so such a listener
 *
 * * never sees the secret, and cannot prove an answer, and
 * * cannot make Bay relay its answer: the session is ended as the wrong one and
 *   the call runs on a fresh session (the call's own body reaches the listener
 *   once; only checking /meta before every call would avoid that).
 */
import { expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

test("a verified session's port answered by a foreign listener: its answer never reaches the owner, nor the secret the listener", async () => {
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
    // A fresh session ran it: the old kernel's state is gone (NameError), nothing forged came back.
    expect(r.body.success).toBe(false);
    expect(JSON.stringify(r.body.error)).toContain("NameError");
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.join("\n")).not.toContain(session.secret!);
  } finally {
    await listener.stop(true);
  }
});
