/**
 * limits.max_open_streams_per_owner on real Docker, with a real WebSocket
 * terminal holding the owner's only slot: a second terminal is refused at its
 * handshake (429) and a streamed exec likewise, before anything reaches the
 * Ship; another owner is not affected; once the terminal closes its slot is
 * free again. A server's answer streaming through a port holds a slot the same way.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SENT_POLL_MS } from "../../src/bay/domain/open-streams.ts";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { handshakeStatus, TerminalClient } from "../support/terminal-client.ts";
import { dropSandbox, newSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";

let t: TestBay;
let served: ServedBay;
servedE2eBay(
  (bay, s) => {
    t = bay;
    served = s;
  },
  { config: { limits: { max_open_streams_per_owner: 1 } } as any },
);

test("a terminal holds the owner's only slot: a second one and a streamed exec get 429, another owner does not; closing frees it", async () => {
  const id = await newSandbox(t);
  const bobs = (await t.json("POST", "/v1/sandboxes", { body: {}, owner: "bob" })).body.id as string;
  try {
    const url = (sb: string) => `${served.ws}/v1/sandboxes/${sb}/terminal`;
    const term = await TerminalClient.open(url(id), { headers: { "x-owner": "alice" } });
    term.type("echo rea''dy\n");
    await term.waitFor(/ready/, 60_000);
    expect(t.bay.deps.router.openStreams("anon:alice")).toBe(1);

    expect(await handshakeStatus(url(id), { "x-owner": "alice" })).toBe(429);
    const streamed = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, {
      body: { command: "echo should-not-run > /workspace/ran" },
      headers: { accept: "text/event-stream" },
    });
    expect(streamed.status).toBe(429);
    expect(streamed.body.error.details).toEqual({ reason: "open_streams", limit: 1 });
    // It never ran: the file it would have written is not there.
    const ran = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, {
      body: { command: "test -e /workspace/ran && echo yes || echo no" },
    });
    expect(ran.body.output.trim()).toBe("no");

    expect(await handshakeStatus(url(bobs), { "x-owner": "bob" })).toBe(101);

    term.close();
    await term.closed;
    await pollUntil(
      () => t.bay.deps.router.openStreams("anon:alice"),
      (n) => n === 0,
      20_000,
      "the terminal's slot given back",
    );
    const again = await TerminalClient.open(url(id), { headers: { "x-owner": "alice" } });
    again.close();
    await again.closed;
  } finally {
    await dropSandbox(t, id);
    await t.json("DELETE", `/v1/sandboxes/${bobs}`, { owner: "bob" });
  }
});

test("a server's endless answer through a port holds the owner's only slot until the client lets it go", async () => {
  const id = await newSandbox(t);
  try {
    const server = readFileSync(join(import.meta.dir, "fixtures/port-server.py"), "utf8");
    expect((await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "s.py", content: server } })).status).toBe(200);
    expect(
      (await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "python3 s.py 8080 0.0.0.0", background: true } })).status,
    ).toBe(200);
    const port = (rest: string, init: RequestInit = {}) =>
      fetch(`${served.http}/v1/sandboxes/${id}/ports/8080/${rest}`, { ...init, headers: { "x-owner": "alice" } });
    const status = async (rest: string) => {
      const r = await port(rest);
      await r.arrayBuffer();
      return r.status;
    };
    await pollUntil(
      () => status("echo"),
      (s) => s === 200,
      30_000,
      "server up",
    );
    // A finished answer gives its slot back once the server has sent it (checked every SENT_POLL_MS).
    await Bun.sleep(SENT_POLL_MS * 3);
    const ctl = new AbortController();
    const endless = await port("endless", { signal: ctl.signal });
    expect(endless.status).toBe(200);
    const reader = endless.body!.getReader();
    await reader.read();
    const refused = await port("echo");
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { details: { reason: string } } }).error.details.reason).toBe("open_streams");
    ctl.abort();
    await pollUntil(
      () => status("echo"),
      (s) => s === 200,
      30_000,
      "slot free again",
    );
  } finally {
    await dropSandbox(t, id);
  }
}, 120_000);
