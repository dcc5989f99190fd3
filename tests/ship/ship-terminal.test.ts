/**
 * Ship's terminal over WebSocket (PTY, resize, flow control); Ship in-process on
 * the host (support/interactive.ts).
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NONCE_HEADER, newNonce, shipBearer, shipProof } from "../../src/protocol/ship/index.ts";
import { pollUntil } from "../support/harness.ts";
import { handshakeStatus, TerminalClient } from "../support/terminal-client.ts";
import { credentials, workspace, base, client, auth, useInteractiveShip } from "./support/interactive.ts";

useInteractiveShip();

describe("terminal", () => {
  const newTerminal = async (size: { cols?: number; rows?: number } = {}) => {
    const res = await client.json("POST", "/terminals", size);
    expect(res.status).toBe(201);
    return res.body.terminal_id as string;
  };
  const attach = (id: string, ack = true) => TerminalClient.open(`ws://${base}/terminals/${id}`, { headers: auth, ack });

  test("a login shell on a PTY: TERM, cwd, resize, interactive python, Ctrl-C, exit status in the close frame", async () => {
    const term = await attach(await newTerminal({ cols: 100, rows: 30 }));
    term.type('echo "[$TERM|$PWD|$(stty size)]"\n');
    expect((await term.waitFor(/\[(\S+)\|(\S+)\|(\d+ \d+)\]/))!.slice(1)).toEqual(["xterm-256color", workspace, "30 100"]);
    term.control({ type: "resize", cols: 132, rows: 43 });
    let mark = term.screen.length;
    term.type("stty size\n");
    await term.waitFor(/43 132/, 20_000, mark);
    term.type("python3 -q\n");
    await term.waitFor(/>>> /);
    mark = term.screen.length;
    term.type("6*7\n");
    await term.waitFor(/42\r\n>>> /, 20_000, mark);
    mark = term.screen.length;
    term.type("import time; print('nap' + 'ping', flush=True); time.sleep(60)\n");
    await term.waitFor(/[\r\n]napping\r\n/, 20_000, mark);
    term.type("\x03");
    await term.waitFor(/KeyboardInterrupt/);
    term.type("exit()\n");
    term.type("exit 3\n");
    const closed = await term.closed;
    expect(closed).toEqual({ code: 1000, reason: JSON.stringify({ exit_code: 3, signal: null }) });
    expect(term.controls).toContainEqual({ type: "exit", exit_code: 3, signal: null });
  });

  test("a terminal starts in the cwd it names, with the variables it names over Ship's defaults", async () => {
    mkdirSync(join(workspace, "term-sub", "deep"), { recursive: true });
    const res = await client.json("POST", "/terminals", {
      cwd: "term-sub/deep",
      env: { BAY_TERM_VAR: 'it\'s "odd" $x', TERM: "xterm" },
    });
    expect(res.status).toBe(201);
    const term = await attach(res.body.terminal_id);
    // The quotes split the marker, so the echoed command line never matches.
    term.type('echo "EN""V[$PWD|$BAY_TERM_VAR|$TERM]"\n');
    expect((await term.waitFor(/ENV\[([^|\n]+)\|([^|\n]*)\|(\S+)\]/))!.slice(1)).toEqual([
      join(workspace, "term-sub", "deep"),
      `it's "odd" $x`,
      "xterm",
    ]);
    term.type("exit\n");
    await term.closed;
    const refused: Array<[Record<string, unknown>, number]> = [
      [{ cwd: "../outside" }, 400],
      [{ cwd: "no-such-dir" }, 404],
      [{ env: { "A=B": "x" } }, 400],
      [{ env: { A: "x\u0000" } }, 400],
    ];
    for (const [body, status] of refused) {
      const bad = await client.json("POST", "/terminals", body);
      expect([bad.status, body]).toEqual([status, body]);
    }
  });

  test("refusals: no secret 401, unknown 404, attached twice 409, not an upgrade 400, bad control message answered", async () => {
    const id = await newTerminal();
    expect(await handshakeStatus(`ws://${base}/terminals/${id}`)).toBe(401);
    expect(await handshakeStatus(`ws://${base}/terminals/term-nope`, auth)).toBe(404);
    const plain = await client.json("GET", `/terminals/${id}`);
    expect([plain.status, plain.body.error.code]).toEqual([400, "validation_error"]);
    const term = await attach(id);
    expect(await handshakeStatus(`ws://${base}/terminals/${id}`, auth)).toBe(409);
    term.ws.send("not json");
    term.control({ type: "resize", cols: 0, rows: 5 });
    await pollUntil(
      () => term.controls.filter((c) => c.type === "error").length,
      (n) => n === 2,
      10_000,
    );
    expect(term.controls.find((c) => c.type === "error").error.code).toBe("validation_error");
    // The terminal goes on.
    term.type("echo still-here\n");
    await term.waitFor(/still-here\r\n/);
    term.close();
  });

  test("an attach with Bay's nonce gets Ship's proof as its first frame (and the derived bearer key opens it)", async () => {
    const nonce = newNonce();
    const term = await TerminalClient.open(`ws://${base}/terminals/${await newTerminal()}`, {
      headers: { authorization: `Bearer ${shipBearer(credentials.secret)}`, [NONCE_HEADER]: nonce },
    });
    await term.waitForControl("proof");
    expect(term.controls[0]).toEqual({ type: "proof", proof: shipProof(credentials.secret, nonce) });
    term.type("echo proved\n");
    await term.waitFor(/proved\r\n/);
    term.close();
    // Without a nonce there is nothing to prove: no proof frame.
    const plain = await attach(await newTerminal());
    plain.type("echo plain\n");
    await plain.waitFor(/plain\r\n/);
    expect(plain.controls.filter((c) => c.type === "proof")).toEqual([]);
    plain.close();
  });

  test("a terminal nobody attaches to is hung up; a closed client hangs up its shell", async () => {
    const id = await newTerminal();
    await pollUntil(
      () => handshakeStatus(`ws://${base}/terminals/${id}`, auth),
      (s) => s === 404,
      20_000,
      "unattached terminal gone",
    );

    const term = await attach(await newTerminal());
    term.type("echo $$\n");
    const pid = Number((await term.waitFor(/^(\d+)\r$/m))[1]);
    term.close();
    await pollUntil(
      () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      },
      (alive) => !alive,
      20_000,
      "shell gone after the client left",
    );
  });

  test("at most SHIP_MAX_TERMINALS at once", async () => {
    const open = [await attach(await newTerminal()), await attach(await newTerminal()), await attach(await newTerminal())];
    const fourth = await client.json("POST", "/terminals", {});
    expect([fourth.status, fourth.body.error.code]).toEqual([429, "quota_exceeded"]);
    for (const t of open) t.close();
    await pollUntil(
      async () => (await client.json("POST", "/terminals", {})).status,
      (s) => s === 201,
      20_000,
    );
  });

  test("a client that does not acknowledge stops the PTY's output: the writer waits, nothing piles up", async () => {
    const term = await attach(await newTerminal(), false);
    term.type("head -c 5000000 /dev/zero | tr '\\0' a; echo; echo END-MARK\n");
    // The writer ends up blocked on the terminal (the kernel's own wait), not done.
    const writer = await pollUntil(
      () => {
        const ps = Bun.spawnSync(["pgrep", "-x", "tr"]).stdout.toString().trim().split("\n").filter(Boolean);
        for (const pid of ps) {
          try {
            if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("a") && readFileSync(`/proc/${pid}/wchan`, "utf8") === "wait_woken")
              return pid;
          } catch {
            // gone
          }
        }
        return null;
      },
      (pid) => pid !== null,
      20_000,
      "the writer blocked on the stopped terminal",
    );
    expect(writer).not.toBeNull();
    // Ship sent at most its window (1 MiB) plus what was already on the way.
    expect(term.received).toBeLessThan(1024 * 1024 + 256 * 1024);
    expect(term.screen).not.toMatch(/^END-MARK/m);
    // Acknowledging lets it go on to the end.
    const ackLoop = setInterval(() => term.control({ type: "ack", bytes: 1024 * 1024 }), 5);
    await term.waitFor(/^END-MARK/m, 60_000);
    clearInterval(ackLoop);
    expect(term.received).toBeGreaterThan(5_000_000);
    term.close();
  });

  test("input is acknowledged as it reaches the PTY, after an input_acks first", async () => {
    const term = await attach(await newTerminal());
    await pollUntil(
      () => term.controls.filter((c) => c.type === "input_acks").length,
      (n) => n === 1,
      10_000,
    );
    expect(term.controls[0]).toEqual({ type: "input_acks" });
    const line = "echo acked-$((6*7))\n";
    term.type(line);
    await term.waitFor(/acked-42\r\n/);
    const acked = term.controls.filter((c) => c.type === "input_ack").reduce((n, c) => n + c.bytes, 0);
    expect(acked).toBe(line.length);
    term.type("exit\n");
    await term.closed;
  });

  test("input the shell does not read is bounded: past 1 MiB it is refused with an error message", async () => {
    const term = await attach(await newTerminal());
    term.type("stty -icanon; sleep 600\n");
    await term.waitFor(/sleep 600/);
    const chunk = new Uint8Array(400 * 1024).fill(0x61);
    for (let i = 0; i < 4; i++) term.ws.send(chunk);
    const err = await term.waitForControl("error");
    expect(err.error).toMatchObject({ code: "payload_too_large", details: { limit_bytes: 1024 * 1024 } });
    // Refused input is acknowledged as well as taken input: it is gone either way.
    await pollUntil(
      () => term.controls.filter((c) => c.type === "input_ack").reduce((n, c) => n + c.bytes, 0),
      (n) => n >= 400 * 1024,
      10_000,
    );
    // Said once while input is refused: one message per refused frame could fill a peer that does not read (review s108).
    for (let i = 0; i < 50; i++) term.ws.send(new Uint8Array(1024));
    await pollUntil(
      () => term.controls.filter((c) => c.type === "input_ack").reduce((n, c) => n + c.bytes, 0),
      (n) => n >= 400 * 1024 + 50 * 1024,
      10_000,
    );
    expect(term.controls.filter((c) => c.type === "error")).toHaveLength(1);
    // A frame over 1 MiB closes the connection (1009: message too big).
    term.ws.send(new Uint8Array(1024 * 1024 + 1));
    expect((await term.closed).code).toBe(1009);
  });
});
