/**
 * `bay sandbox cp` interrupted in the middle of a download (src/bay/cli/copy.ts):
 * a `bay` process copying from a server that trickles its answer is sent SIGINT,
 * SIGTERM or SIGHUP once its part file exists. It leaves no part file and the
 * destination as it was, and exits 128+n. (The server is a stand-in: what is
 * tested is the client's clean-up, which a real Bay answers too fast to catch.)
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = join(import.meta.dir, "../../src/bay/cli.ts");
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

test.each([
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const)(
  "%s mid-download: no part file, the destination untouched, exit %d",
  async (signal, status) => {
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch() {
        const body = new ReadableStream<Uint8Array>({
          async pull(ctl) {
            await Bun.sleep(100);
            ctl.enqueue(new Uint8Array(1024).fill(120));
          },
        });
        return new Response(body, { headers: { "content-type": "application/octet-stream" } });
      },
    });
    const dir = mkdtempSync(join(tmpdir(), "bay-cp-int-"));
    stops.push(() => {
      server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    });
    const dest = join(dir, "kept.txt");
    writeFileSync(dest, "KEEP");
    const proc = Bun.spawn(["bun", CLI, "sandbox", "cp", "sandbox-x:slow.bin", dest], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/root",
        BAY_URL: `http://127.0.0.1:${server.port}`,
        BAY_OWNER: "alice",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const parts = () => readdirSync(dir).filter((f) => f.includes("bay-part"));
    for (let i = 0; i < 200 && parts().length === 0; i++) await Bun.sleep(50);
    expect(parts()).toHaveLength(1);
    proc.kill(signal);
    expect(await proc.exited).toBe(status);
    expect(parts()).toEqual([]);
    expect(readFileSync(dest, "utf8")).toBe("KEEP");
  },
  30_000,
);
