/**
 * The terminal through Bay on real Docker, with a real WebSocket client typing
 * and reading the screen: a login shell as the sandbox user in /workspace,
 * resize, an interactive python3, Ctrl-C, the exit status in the close frame;
 * tickets; refusals; and a stop or delete closing an open terminal with why.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { handshakeStatus, TerminalClient } from "../support/terminal-client.ts";
import { assertContractErrorBody } from "../support/error-contract.ts";
import { containersOf, newSandbox, withSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";

let t: TestBay;
let served: ServedBay;
servedE2eBay((bay, s) => {
  t = bay;
  served = s;
});

const ALICE = { "x-owner": "alice" };
const url = (id: string, query = "") => `${served.ws}/v1/sandboxes/${id}/terminal${query}`;

describe("terminal through Bay", () => {
  test("a login shell as the sandbox user: TERM, /workspace, resize, python3, Ctrl-C, exit status", async () => {
    await withSandbox(t, async (id) => {
      const term = await TerminalClient.open(url(id, "?cols=100&rows=30"), { headers: ALICE });
      term.type('echo "[$TERM|$PWD|$(id -un)|$(stty size)|$0]"\n');
      const m = await term.waitFor(/\[(\S+)\|(\S+)\|(\S+)\|(\d+ \d+)\|(\S+)\]/, 60_000);
      expect(m.slice(1)).toEqual(["xterm-256color", "/workspace", "ship", "30 100", "bash"]);
      term.control({ type: "resize", cols: 120, rows: 40 });
      let mark = term.screen.length;
      term.type("stty size\n");
      await term.waitFor(/[\r\n]40 120\r\n/, 20_000, mark);
      term.type("python3 -q\n");
      await term.waitFor(/>>> $/);
      mark = term.screen.length;
      term.type("6*7\n");
      await term.waitFor(/[\r\n]42\r\n>>> /, 20_000, mark);
      mark = term.screen.length;
      term.type("import time; print('nap' + 'ping', flush=True); time.sleep(120)\n");
      await term.waitFor(/[\r\n]napping\r\n/, 20_000, mark);
      term.type("\x03");
      await term.waitFor(/KeyboardInterrupt/);
      term.type("exit()\n");
      term.type("exit 3\n");
      expect(await term.closed).toEqual({ code: 1000, reason: JSON.stringify({ exit_code: 3, signal: null }) });
      expect(term.controls).toContainEqual({ type: "exit", exit_code: 3, signal: null });
    });
  });

  test("?cwd starts the shell in that workspace directory; one outside it or missing is refused in the error model", async () => {
    await withSandbox(t, async (id) => {
      for (const [query, status] of [
        ["?cwd=..%2Fetc", 400],
        ["?cwd=%2Fetc", 400],
        ["?cwd=a%00b", 400],
      ] as const) {
        expect([query, await handshakeStatus(url(id, query), ALICE)]).toEqual([query, status]);
      }
      // Refused before any runtime started.
      expect(await containersOf(t, id)).toEqual([]);
      expect((await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "mkdir -p 'here/sub dir'" } })).status).toBe(200);
      expect(await handshakeStatus(url(id, "?cwd=no-such-dir"), ALICE)).toBe(404);
      const term = await TerminalClient.open(url(id, `?cwd=${encodeURIComponent("here/sub dir")}`), { headers: ALICE });
      // The quotes split the marker, so the echoed command line never matches.
      term.type('echo "P""WD[$PWD]"\n');
      expect((await term.waitFor(/PWD\[([^\]\n]+)\]/, 60_000))[1]).toBe("/workspace/here/sub dir");
      term.close();
    });
  });

  test("from a browser's point of view: a ticket and no headers; the ticket works once", async () => {
    await withSandbox(t, async (id) => {
      const minted = await t.json("POST", `/v1/sandboxes/${id}/terminal/tickets`);
      expect(minted.status).toBe(201);
      const term = await TerminalClient.open(`${served.ws}${minted.body.url}`);
      term.type("echo ticket-ok\n");
      await term.waitFor(/[\r\n]ticket-ok\r\n/, 60_000);
      term.close();
      expect(await handshakeStatus(`${served.ws}${minted.body.url}`)).toBe(401);
    });
  });

  test("refusals before the upgrade, in the error model: another owner 404, a bad size 400, not an upgrade 400", async () => {
    await withSandbox(t, async (id) => {
      expect(await handshakeStatus(url(id), { "x-owner": "bob" })).toBe(404);
      for (const query of ["?cols=0", "?rows=1001", "?cols=abc", "?cols=80.5", "?rows=-3"]) {
        expect([query, await handshakeStatus(url(id, query), ALICE)]).toEqual([query, 400]);
      }
      const plain = await fetch(`${served.http}/v1/sandboxes/${id}/terminal`, { headers: ALICE });
      expect(plain.status).toBe(400);
      const body = await plain.json();
      assertContractErrorBody(400, body);
      expect((body as any).error.code).toBe("validation_error");
      // Neither started a container.
      expect(await containersOf(t, id)).toEqual([]);
    });
  });

  test("control messages Bay does not know are refused with an error message; the terminal goes on", async () => {
    await withSandbox(t, async (id) => {
      const term = await TerminalClient.open(url(id), { headers: ALICE });
      term.ws.send("{not json");
      term.control({ type: "ack", bytes: 1e12 }); // Ship's flow control is Bay's business, not the client's
      term.control({ type: "resize", cols: 5000, rows: 1 });
      const deadline = Date.now() + 20_000;
      while (term.controls.filter((c) => c.type === "error").length < 3 && Date.now() < deadline) await Bun.sleep(20);
      const errors = term.controls.filter((c) => c.type === "error");
      expect(errors.length).toBe(3);
      for (const e of errors) {
        assertContractErrorBody(400, { error: e.error });
        expect(e.error.code).toBe("validation_error");
      }
      term.type("printf 'alive\\n'\n");
      await term.waitFor(/[\r\n]alive\r\n/, 60_000);
      term.close();
    });
  });

  test("a stop closes an open terminal with why (1011, conflict); so does a delete (not_found)", async () => {
    const id = await newSandbox(t);
    const term = await TerminalClient.open(url(id), { headers: ALICE });
    term.type("echo up\n");
    await term.waitFor(/[\r\n]up\r\n/, 60_000);
    expect((await t.json("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
    expect(await term.closed).toEqual({ code: 1011, reason: JSON.stringify({ code: "conflict" }) });
    const err = term.controls.find((c) => c.type === "error");
    expect(err.error).toMatchObject({ code: "conflict", details: { reason: "session_ended", sandbox_id: id } });
    assertContractErrorBody(409, { error: err.error });

    const again = await TerminalClient.open(url(id), { headers: ALICE });
    again.type("echo back\n");
    await again.waitFor(/[\r\n]back\r\n/, 60_000);
    expect((await t.json("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(await again.closed).toEqual({ code: 1011, reason: JSON.stringify({ code: "not_found" }) });
  });
});
