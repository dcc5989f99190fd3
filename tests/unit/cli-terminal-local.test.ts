/**
 * The process's own output as `bay sandbox shell` writes it (processTerminal): what waits for
 * a pipe nobody reads is counted, so the attachment can pause reading from Bay. Bun's
 * process.stdout.writableLength stays 0 however much waits (review s104 H1).
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const WRITER = `
import { processTerminal } from ${JSON.stringify(join(import.meta.dir, "../../src/bay/cli/terminal-local.ts"))};
const term = processTerminal();
const chunk = new Uint8Array(64 * 1024).fill(120);
for (let i = 0; i < 256; i++) term.write(chunk); // 16 MiB into a pipe nobody reads
await Bun.sleep(200);
process.stderr.write(String(term.pending()));
process.exit(0);
`;

test("processTerminal counts the bytes a pipe has not taken", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bay-term-"));
  try {
    const script = join(dir, "writer.ts");
    writeFileSync(script, WRITER);
    // stdout into a pipe whose reader never reads: it takes at most its buffer (64 KiB to 1 MiB).
    const proc = Bun.spawn(["sh", "-c", 'exec "$0" "$1" | sleep 5', process.execPath, script], { stdout: "ignore", stderr: "pipe" });
    const pending = Number(await new Response(proc.stderr).text());
    proc.kill();
    expect(pending).toBeGreaterThan(8 * 1024 * 1024);
    expect(pending).toBeLessThanOrEqual(16 * 1024 * 1024);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 20_000);
