/**
 * `bay sandbox shell` on a real terminal (script(1)) against a fake Bay, killed by
 * signals other than SIGTERM/SIGQUIT/SIGHUP (review s100 M2b): the terminal's settings
 * are given back as they were, the screen's modes are reset, and bay exits 128+n.
 */
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { serveTerminalBay } from "../support/fake-terminal-bay.ts";

const CLI = join(import.meta.dir, "../../src/bay/cli.ts");

// A full-screen program's modes on: bracketed paste, the alternate screen, no cursor, the mouse.
const server = serveTerminalBay((ws) => void ws.send(new TextEncoder().encode("\x1b[?2004h\x1b[?1049h\x1b[?25l\x1b[?1000h$ ")));
afterAll(() => server.stop(true));

test.each([
  ["USR1", 138],
  ["USR2", 140],
  ["ALRM", 142],
  ["INT", 130],
] as const)(
  "killed by SIG%s while raw, bay restores the terminal, resets its modes and exits %d",
  async (signal, status) => {
    const inner = `stty -g; bun ${CLI} sandbox shell sb-1 < /dev/tty & p=$!; sleep 2; kill -${signal} $p; wait $p; echo "rc=$?"; stty -g`;
    const proc = Bun.spawn(["script", "-qec", inner, "/dev/null"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", BAY_URL: `http://127.0.0.1:${server.port}` },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const killer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const out = new Response(proc.stdout).text();
    await proc.exited;
    clearTimeout(killer);
    proc.stdin.end();
    const screen = (await out).replace(/\r/g, "");
    const settings = screen.split("\n").filter((l) => /^[0-9a-f]+(:[0-9a-f]+){10,}$/.test(l.trim()));
    expect(settings).toHaveLength(2);
    expect(settings[1]).toBe(settings[0]!);
    expect(screen).toContain(`rc=${status}`);
    expect(screen).toContain("\x1b[?1049l\x1b[?2004l\x1b[?25h\x1b[?1000l");
  },
  30_000,
);
