/**
 * A Bay run as a real process (`bun run src/bay/main.ts`) on loopback, for tests
 * that kill it, restart it on the same database, or run several replicas side by
 * side. Its JSON log lines (stderr) are collected so tests can count transitions.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./free-port.ts";

const ROOT = join(import.meta.dir, "../..");

export interface BayProcessOptions {
  /** libSQL file shared by restarts and replicas (or `dbUrl`). */
  dbPath?: string;
  /** A libSQL server's URL instead of a file. */
  dbUrl?: string;
  instanceId: string;
  /** Written as the BAY_CONFIG file (JSON is YAML). */
  config?: Record<string, unknown>;
  /** Where the config file goes. */
  dir: string;
  env?: Record<string, string>;
}

export interface BayProcess {
  url: string;
  pid: number;
  /** Parsed log lines so far. */
  logs: Array<Record<string, unknown> & { msg: string; level: string }>;
  /** Sends a signal to this process (by pid) and waits for it to exit. */
  kill(signal: "SIGKILL" | "SIGTERM"): Promise<void>;
  /** Settles when the process has exited: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** Bay's exit status when it cannot listen on its address (README: Configuration). */
const CANNOT_LISTEN = 3;

/** Bay could not listen: the free port it was given was taken meanwhile. */
class PortTaken extends Error {}

/**
 * Starts Bay and waits until /health answers. A port found free can be taken by another
 * process before Bay listens (the fuzzer and the soak start Bays side by side in CI):
 * then Bay exits with CANNOT_LISTEN, and it is started again on another port.
 */
export async function startBayProcess(opts: BayProcessOptions): Promise<BayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(freePort(), opts);
    } catch (e) {
      if (!(e instanceof PortTaken) || attempt === 5) throw e;
    }
  }
}

async function startOn(port: number, opts: BayProcessOptions): Promise<BayProcess> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    BAY_HOST: "127.0.0.1",
    BAY_PORT: String(port),
    BAY_AUTH_MODE: "anonymous",
    BAY_DB_URL: opts.dbUrl ?? `file:${opts.dbPath}`,
    BAY_INSTANCE_ID: opts.instanceId,
    BAY_LOG_LEVEL: "info",
    ...(process.env.BAY_SHIP_TAG ? { BAY_SHIP_TAG: process.env.BAY_SHIP_TAG } : {}),
    ...opts.env,
  };
  if (opts.config) {
    const file = join(opts.dir, `bay-config-${port}.yaml`);
    writeFileSync(file, JSON.stringify(opts.config));
    env.BAY_CONFIG = file;
  }
  const proc = Bun.spawn(["bun", "run", "src/bay/main.ts"], { cwd: ROOT, env, stdout: "ignore", stderr: "pipe" });
  const logs: BayProcess["logs"] = [];
  const pump = (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ msg: line, level: "raw" });
        }
      }
    }
  })();
  const kill = async (signal: "SIGKILL" | "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid, signal);
      } catch {
        // already gone
      }
    }
    await proc.exited;
    await pump.catch(() => {});
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await pump.catch(() => {});
      const why = `Bay exited with ${proc.exitCode}: ${logs.map((l) => JSON.stringify(l)).join("\n")}`;
      throw proc.exitCode === CANNOT_LISTEN ? new PortTaken(why) : new Error(why);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await kill("SIGKILL");
      throw new Error("Bay did not answer /health within 30 s");
    }
    await Bun.sleep(100);
  }
  const exited = proc.exited.then(() => ({
    code: proc.signalCode ? null : proc.exitCode,
    signal: proc.signalCode === null ? null : String(proc.signalCode),
  }));
  return { url, pid: proc.pid, logs, kill, exited };
}

/** JSON request against a Bay process as owner "alice". */
export async function api(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method,
    headers: { "x-owner": "alice", ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}
