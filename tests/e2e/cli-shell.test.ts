/**
 * `bay sandbox shell ID` (src/bay/cli/terminal-attach.ts) run as a user runs it,
 * a `bay` process against a Bay served over HTTP on real Docker: with input piped
 * in (the shell's status becomes bay's, and the end of input ends the shell), and
 * on a real terminal made by script(1) (the size goes over and follows a resize,
 * Ctrl-C reaches the sandbox instead of killing bay). And as an attacker or a
 * careless user: another owner's sandbox, odd ids, a sandbox deleted under an
 * open shell, a Bay that is not there.
 */
import { describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestBay } from "../support/harness.ts";
import { dropSandbox, freePort, newSandbox, sh, withSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";
import { CLI } from "./support/cli.ts";

let t: TestBay;
let served: ServedBay;
servedE2eBay((bay, s) => {
  t = bay;
  served = s;
});

/** Runs `cmd` (argv) with BAY_URL/BAY_OWNER set; `feed` writes its stdin step by step; kills it after `limitMs`. */
async function run(
  cmd: string[],
  feed: (write: (s: string) => void) => Promise<void>,
  opts: { owner?: string; url?: string; limitMs?: number } = {},
) {
  const proc = Bun.spawn(cmd, {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/root",
      BAY_URL: opts.url ?? served.http,
      BAY_OWNER: opts.owner ?? "alice",
    },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), opts.limitMs ?? 60_000);
  const out = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await feed((s) => {
    proc.stdin.write(s);
    proc.stdin.flush();
  });
  await proc.stdin.end();
  const [stdout, stderr] = await out;
  const code = await proc.exited;
  clearTimeout(killer);
  // The screen without escape sequences and carriage returns.
  const screen = stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
  return { code, screen, stderr, killed: proc.signalCode === "SIGKILL" };
}

const shell = (id: string) => ["bun", CLI, "sandbox", "shell", id];
const piped = (lines: string) => async (write: (s: string) => void) => write(lines);

describe("bay sandbox shell", () => {
  test("piped input: typed into a login shell in /workspace as the sandbox user; the shell's status is bay's", async () => {
    await withSandbox(t, async (id) => {
      const r = await run(shell(id), piped('echo "[$(id -un)|$PWD|$TERM|$((6*7))]"\nexit 3\n'));
      expect(r.killed).toBe(false);
      expect(r.screen).toContain("[ship|/workspace|xterm-256color|42]");
      expect(r.code).toBe(3);
      expect(r.stderr).toBe("");
    });
  }, 120_000);

  test("piped input without an exit: its end ends the shell (Ctrl-D), even typed ahead of a running command", async () => {
    await withSandbox(t, async (id) => {
      const r = await run(shell(id), piped("sleep 2; echo slept\n"));
      expect(r.killed).toBe(false);
      expect(r.screen).toContain("slept");
      expect(r.screen).toContain("logout");
      expect(r.code).toBe(0);
    });
  }, 120_000);

  test("a file piped in (16 MiB) reaches the shell whole: input goes no faster than the shell takes it, none is refused", async () => {
    await withSandbox(t, async (id) => {
      const dir = mkdtempSync(join(tmpdir(), "bay-cli-shell-"));
      try {
        const data = Buffer.from(
          randomBytes(12 * 1024 * 1024)
            .toString("base64")
            .replace(/(.{76})/g, "$1\n"),
        );
        writeFileSync(join(dir, "in.b64"), Buffer.concat([data, Buffer.from("\n")]));
        const want = createHash("sha256").update(data).update("\n").digest("hex");
        const feed = `(echo 'stty -echo; cat > /workspace/in.b64; exit 5'; cat ${join(dir, "in.b64")})`;
        const r = await run(["bash", "-c", `${feed} | ${shell(id).join(" ")} > /dev/null`], piped(""), { limitMs: 150_000 });
        expect(r.killed).toBe(false);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(5);
        const got = await sh(t, id, { command: "sha256sum /workspace/in.b64" });
        expect(String(got.body.output).split(" ")[0]).toBe(want);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }, 180_000);

  test("on a real terminal: its size goes over and follows a resize; Ctrl-C interrupts the sandbox's command, not bay", async () => {
    await withSandbox(t, async (id) => {
      // Started first, so the steps below meet a running shell.
      expect((await sh(t, id, { command: "true" })).status).toBe(200);
      // script(1) gives bay a terminal of 100×30, made 120×40 four seconds in (SIGWINCH to bay).
      const inner = `stty cols 100 rows 30; (sleep 4; stty cols 120 rows 40 < /dev/tty) & exec ${shell(id).join(" ")}`;
      const r = await run(["script", "-qec", inner, "/dev/null"], async (write) => {
        await Bun.sleep(2_000);
        write("stty size\n");
        await Bun.sleep(3_000);
        write("stty size; sleep 60\n");
        await Bun.sleep(2_000);
        write("\x03");
        await Bun.sleep(1_000);
        write("echo after-$((40+2)); exit 4\n");
      });
      expect(r.killed).toBe(false);
      expect(r.screen).toMatch(/\n30 100\n/);
      expect(r.screen).toMatch(/\n40 120\n/);
      expect(r.screen).toContain("^C");
      expect(r.screen).toContain("after-42");
      expect(r.code).toBe(4);
    });
  }, 120_000);
});

describe("bay sandbox shell, its own end", () => {
  test("output into a pipe that closes (| head): the shell is hung up and bay ends quietly", async () => {
    await withSandbox(t, async (id) => {
      const r = await run(["bash", "-c", `set -o pipefail; ${shell(id).join(" ")} | head -c 2000`], piped("yes\n"));
      expect(r.killed).toBe(false);
      expect(r.screen.length).toBeLessThanOrEqual(2000);
      // bay's own status, as any writer into a closed pipe: SIGPIPE's, and nothing said.
      expect(r.code).toBe(141);
      expect(r.stderr).toBe("");
    });
  }, 120_000);

  test("killed by SIGTERM or SIGQUIT while raw, bay gives the terminal back as it was and exits 128+n", async () => {
    await withSandbox(t, async (id) => {
      for (const [signal, status] of [
        ["TERM", 143],
        ["QUIT", 131],
      ] as const) {
        // In script(1)'s terminal: the settings before, bay (on that terminal) killed 4 s in, the settings after.
        const inner = `stty -g; ${shell(id).join(" ")} < /dev/tty & p=$!; sleep 4; kill -${signal} $p; wait $p; echo "rc=$?"; stty -g`;
        const r = await run(["script", "-qec", inner, "/dev/null"], async () => {
          await Bun.sleep(6_000);
        });
        expect(r.killed).toBe(false);
        const settings = r.screen.split("\n").filter((l) => /^[0-9a-f]+(:[0-9a-f]+){10,}$/.test(l.trim()));
        expect(settings).toHaveLength(2);
        expect(settings[1]).toBe(settings[0]!);
        expect(r.screen).toContain(`rc=${status}`);
      }
    });
  }, 120_000);
});

describe("bay sandbox shell, refused or cut", () => {
  test("another owner's sandbox, an unknown one and odd ids are not found, and no terminal opens", async () => {
    const id = await newSandbox(t);
    try {
      for (const [target, owner] of [
        [id, "mallory"],
        ["sandbox-nope", "alice"],
        ["../v1/sandboxes", "alice"],
        ["%2e%2e", "alice"],
        ["a b\tc", "alice"],
        ["%00", "alice"],
        ["sandbox-ü/../x", "alice"],
      ] as const) {
        const r = await run(shell(target), piped("echo should-not-run\n"), { owner });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("not_found");
        expect(r.screen).not.toContain("should-not-run");
      }
      // Nothing started the sandbox: it is still idle (no container).
      expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("idle");
    } finally {
      await dropSandbox(t, id);
    }
  }, 120_000);

  test("a sandbox deleted under an open shell ends bay with why (exit 1)", async () => {
    const id = await newSandbox(t);
    const r = await run(shell(id), async (write) => {
      write("echo attached\n");
      await Bun.sleep(4_000);
      await dropSandbox(t, id);
      await Bun.sleep(2_000);
    });
    expect(r.killed).toBe(false);
    expect(r.screen).toContain("attached");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bay: the terminal ended: \S+/);
  }, 120_000);

  test("usage errors exit 2; a Bay that is not there exits 1 saying so", async () => {
    const none = await run(["bun", CLI, "sandbox", "shell"], piped(""));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("sandbox shell needs a sandbox id");
    const two = await run(["bun", CLI, "sandbox", "shell", "a", "b"], piped(""));
    expect(two.code).toBe(2);
    const gone = await run(shell("sandbox-x"), piped(""), { url: `http://127.0.0.1:${freePort()}` });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("cannot reach Bay");
  }, 60_000);
});
