/**
 * Shared helpers for the sandbox end-to-end tests and the benchmarks: checks that
 * Docker and the Ship images are there (failing with what to run when they are
 * not), small request helpers over a `TestBay`, a fixture image whose runtime
 * exits at once, and a Bay started as a subprocess on loopback.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import Docker from "dockerode";
import type { ProfileConfig } from "../../../src/bay/config.ts";
import type { TestBay } from "../../support/harness.ts";
import type { Retained } from "./bay-probe.ts";
import { removeLabelled } from "./docker-fixtures.ts";

export { SHIP_DATA_IMAGE, SHIP_IMAGE } from "../../support/images.ts";
import { SHIP_IMAGE } from "../../support/images.ts";
export { freePort } from "../../support/free-port.ts";
import { freePort } from "../../support/free-port.ts";
export const BASE_IMAGE = process.env.BAY_BASE_IMAGE ?? "bay-base:bookworm";
/** A runtime that prints a line and exits 3 at once: a Ship that never comes up. */
export const EXIT_IMAGE = "bay-test-exit:latest";
const BUILD_HINT = "build them with `bun run image:build`";

export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

/** Fails (never skips) with what to do when the engine or an image is missing. */
export async function requireShipImages(images: string[] = [SHIP_IMAGE]): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`sandbox e2e tests need a running Docker engine at /var/run/docker.sock (start dockerd): ${String(err)}`);
  }
  const missing: string[] = [];
  for (const image of images) {
    try {
      await docker.getImage(image).inspect();
    } catch {
      missing.push(image);
    }
  }
  if (missing.length) throw new Error(`sandbox e2e tests need the image(s) ${missing.join(", ")}: ${BUILD_HINT}`);
}

/** Builds `bay-test-exit` (FROM the base image, CMD exits 3) unless it exists. */
export async function ensureExitImage(): Promise<string> {
  const dockerfile = [
    `FROM ${BASE_IMAGE}`,
    "LABEL bay.test.fixture=exit-at-once",
    `CMD ["/bin/sh", "-c", "echo no ship in this image >&2; exit 3"]`,
  ].join("\n");
  const hash = new Bun.CryptoHasher("sha256").update(dockerfile).digest("hex").slice(0, 16);
  try {
    const info = await docker.getImage(EXIT_IMAGE).inspect();
    if (info.Config.Labels?.["bay.test.exit-hash"] === hash) return EXIT_IMAGE;
  } catch {
    // build below
  }
  const tar = await new Bun.Archive({ Dockerfile: `${dockerfile}\nLABEL bay.test.exit-hash=${hash}\n` }).bytes();
  const stream = await docker.buildImage(Buffer.from(tar) as unknown as NodeJS.ReadableStream, { t: EXIT_IMAGE, rm: true });
  const out = await new Promise<Array<{ error?: string }>>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
  );
  const failed = out.find((o) => o.error);
  if (failed) throw new Error(`building ${EXIT_IMAGE} failed: ${failed.error}`);
  return EXIT_IMAGE;
}

/** Profiles for a harness config: id and image required, the rest defaults (filled by the config schema). */
export const profiles = (...ps: Array<Pick<ProfileConfig, "id" | "image"> & Partial<ProfileConfig>>) => ps as ProfileConfig[];

/** Creates a sandbox and returns its id (asserting 201). */
export async function newSandbox(t: TestBay, profile?: string): Promise<string> {
  const r = await t.json("POST", "/v1/sandboxes", { body: profile ? { profile } : {} });
  if (r.status !== 201) throw new Error(`create sandbox failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}

/** Deletes a sandbox, ignoring "already gone". */
export async function dropSandbox(t: TestBay, id: string): Promise<void> {
  await t.call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
}

/** Runs `fn` with a fresh sandbox that is deleted afterwards, whatever happens. */
export async function withSandbox<T>(t: TestBay, fn: (id: string) => Promise<T>, profile?: string): Promise<T> {
  const id = await newSandbox(t, profile);
  try {
    return await fn(id);
  } finally {
    await dropSandbox(t, id);
  }
}

export const py = (t: TestBay, id: string, code: string, timeout?: number) =>
  t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code, ...(timeout ? { timeout } : {}) } });

export const sh = (
  t: TestBay,
  id: string,
  body: { command: string; cwd?: string; env?: Record<string, string>; background?: boolean; timeout?: number },
) => t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body });

/**
 * A sandbox's cgroup files as Ship sees them: the cgroup v1 path first, then the v2 one
 * (`src/ship/contexts/pids.ts` reads the same pair).
 */
export const CGROUP = {
  pidsMax: ["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"],
  pidsCurrent: ["/sys/fs/cgroup/pids/pids.current", "/sys/fs/cgroup/pids.current"],
  memoryMax: ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"],
} as const;

/** Shell printing the first of a cgroup file's paths that exists (`cat` forks). */
export const catCgroup = (paths: readonly string[]) =>
  paths.map((p, i) => (i < paths.length - 1 ? `cat ${p} 2>/dev/null` : `cat ${p}`)).join(" || ");

/** Shell reading a cgroup file into `$name` with builtins only: it never forks. */
export const readCgroup = (paths: readonly string[], name: string) =>
  `{ ${paths.map((p) => `read -r ${name} < ${p}`).join(" || ")}; } 2>/dev/null`;

/** Containers Bay made for this sandbox, counted through Docker labels. */
export const containersOf = (t: TestBay, sandboxId: string) => t.bay.driver.listContainers({ sandbox_id: sandboxId });

/** Whether a Docker volume exists, asked of the engine directly (docker volume inspect). */
export async function volumeExists(name: string): Promise<boolean> {
  try {
    await docker.getVolume(name).inspect();
    return true;
  } catch {
    return false;
  }
}

/** A multipart upload body for Bay: `path` field first, then `file`. */
export function uploadForm(path: string, data: Uint8Array<ArrayBuffer> | string, filename = "upload.bin"): FormData {
  const form = new FormData();
  form.append("path", path);
  form.append("file", new Blob([data]), filename);
  return form;
}

/** Deterministic pseudo-random chunk `i` of `size` bytes (xorshift32, seeded by i). */
export function chunkOf(i: number, size: number): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = (0x9e3779b9 ^ (i * 2654435761)) >>> 0 || 1;
  for (let k = 0; k < words.length; k++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[k] = x;
  }
  return new Uint8Array(words.buffer, 0, size);
}

export interface BayProcess {
  url: string;
  pid: number;
  instanceId: string;
  /** Its libSQL file (for reading what a test cannot get through the API, e.g. a session's secret). */
  dbPath: string;
  proc: Bun.Subprocess;
  /** Started with `probe`: what it holds after a full garbage collection (see bay-probe.ts). */
  retained?: () => Promise<Retained>;
  /** Stops the process (by its pid) and removes every container and volume labelled with its instance id. */
  close(): Promise<void>;
}

/**
 * Starts `bun run src/bay/main.ts` (of `opts.root`, default this checkout) on
 * 127.0.0.1 with anonymous auth and a temp DB; waits for /health. Its stderr
 * goes to `opts.stderrFile` when given (logs at info level would fill a pipe
 * nobody reads). With `probe` it runs through bay-probe.ts and can be asked what
 * it retains (`retained`).
 */
export async function spawnBay(
  extraEnv: Record<string, string> = {},
  opts: { root?: string; stderrFile?: string; probe?: boolean; port?: number } = {},
): Promise<BayProcess> {
  const root = opts.root ?? join(import.meta.dir, "../../..");
  const dir = mkdtempSync(join(tmpdir(), "bay-proc-"));
  const port = opts.port ?? freePort();
  const instanceId = `e2e-${crypto.randomUUID().slice(0, 12)}`;
  const answers: Array<(r: Retained) => void> = [];
  const entry = opts.probe ? join(import.meta.dir, "bay-probe.ts") : "src/bay/main.ts";
  const proc = Bun.spawn(["bun", "run", entry], {
    cwd: root,
    ...(opts.probe ? { ipc: (message: Retained) => answers.shift()?.(message) } : {}),
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/root",
      BAY_HOST: "127.0.0.1",
      BAY_PORT: String(port),
      BAY_AUTH_MODE: "anonymous",
      BAY_DB_URL: `file:${join(dir, "bay.db")}`,
      BAY_INSTANCE_ID: instanceId,
      BAY_LOG_LEVEL: "warn",
      ...(process.env.BAY_SHIP_TAG ? { BAY_SHIP_TAG: process.env.BAY_SHIP_TAG } : {}),
      ...extraEnv,
    },
    stdout: "ignore",
    stderr: opts.stderrFile ? Bun.file(opts.stderrFile) : "pipe",
  });
  const url = `http://127.0.0.1:${port}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      process.kill(proc.pid, "SIGTERM");
    } catch {
      // already gone
    }
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
    if (!exited) {
      try {
        process.kill(proc.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await proc.exited;
    }
    await removeLabelled(docker, { "bay.instance_id": instanceId }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) {
      const err = opts.stderrFile ? await Bun.file(opts.stderrFile).text() : await new Response(proc.stderr as ReadableStream).text();
      await close();
      throw new Error(`Bay subprocess exited with ${proc.exitCode}: ${err}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error("Bay subprocess did not answer /health within 20 s");
    }
    await Bun.sleep(100);
  }
  const retained = () =>
    new Promise<Retained>((resolve) => {
      answers.push(resolve);
      proc.send("retained");
    });
  return { url, pid: proc.pid, instanceId, proc, close, dbPath: join(dir, "bay.db"), ...(opts.probe ? { retained } : {}) };
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * The published loopback endpoint of the (single) running container of a
 * sandbox (asked of Docker), and the session secret its Ship requires (read from
 * the Bay process's database): what a benchmark needs to call that Ship directly.
 */
export async function shipDirect(bay: BayProcess, sandboxId: string): Promise<{ endpoint: string; headers: Record<string, string> }> {
  const list = await docker.listContainers({ filters: { label: [`bay.sandbox_id=${sandboxId}`, `bay.instance_id=${bay.instanceId}`] } });
  const c = list[0];
  if (!c) throw new Error(`no running container for ${sandboxId}`);
  const port = c.Ports.find((p) => p.IP === "127.0.0.1" && p.PublicPort)?.PublicPort;
  if (!port) throw new Error(`container of ${sandboxId} publishes no loopback port`);
  const db = createClient({ url: `file:${bay.dbPath}` });
  try {
    const rs = await db.execute({ sql: "SELECT secret FROM sessions WHERE id = ?", args: [c.Labels["bay.session_id"] ?? ""] });
    const secret = rs.rows[0]?.secret;
    if (typeof secret !== "string") throw new Error(`no session secret for ${sandboxId}`);
    return { endpoint: `http://127.0.0.1:${port}`, headers: { authorization: `Bearer ${secret}` } };
  } finally {
    db.close();
  }
}

/** Removes every container, volume and network carrying all the given (full Docker) labels; never throws. */
export async function removeLabelledQuietly(labels: Record<string, string>): Promise<void> {
  await removeLabelled(docker, labels).catch(() => {});
}
