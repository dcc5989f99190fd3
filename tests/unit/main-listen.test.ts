/**
 * Bay's entry point when its address is taken: a failed start, never a clean
 * exit. Before, Bun.serve's throw reached the process policy's "uncaught
 * exception; Bay keeps serving" line and the process then exited 0, so a
 * supervisor saw a Bay that had stopped on purpose.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT_CANNOT_LISTEN } from "../../src/bay/main.ts";

const ROOT = join(import.meta.dir, "../..");

test("a port held by another process: exit 3 with the address and a hint, nothing served", async () => {
  const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const dir = mkdtempSync(join(tmpdir(), "bay-listen-"));
  try {
    const proc = Bun.spawn(["bun", "run", "src/bay/main.ts"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/root",
        BAY_HOST: "127.0.0.1",
        BAY_PORT: String(holder.port),
        BAY_AUTH_MODE: "anonymous",
        BAY_DB_URL: `file:${join(dir, "bay.db")}`,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const code = await Promise.race([proc.exited, Bun.sleep(30_000).then(() => "still running")]);
    if (code === "still running") proc.kill("SIGKILL");
    const log = (await new Response(proc.stderr).text()) + (await new Response(proc.stdout).text());
    expect(code).toBe(EXIT_CANNOT_LISTEN);
    expect(EXIT_CANNOT_LISTEN).not.toBe(0);
    const line = log
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "cannot listen; Bay is not running");
    expect(line).toMatchObject({ level: "error", address: `127.0.0.1:${holder.port}` });
    expect(String(line?.hint)).toContain("BAY_PORT");
    expect(log).not.toContain("bay listening");
    expect(log).not.toContain("keeps serving");
  } finally {
    holder.stop(true);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
