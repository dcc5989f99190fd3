/**
 * The checks of `bay doctor`: what Bay needs from the machine, each answered
 * with ok / warn / fail, what was found, and for anything short of ok the fix.
 * Checks only look: none starts, builds, migrates or changes anything.
 */
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { access, constants } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { createClient } from "@libsql/client";
import type Docker from "dockerode";
import type { BayConfig } from "../config.ts";
import { MIGRATIONS } from "../store/migrations.ts";
import { errorMessage } from "../logger.ts";

export type CheckStatus = "ok" | "warn" | "fail";

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

/** What `docker info` says, the parts the checks read. */
export interface EngineInfo {
  ServerVersion?: string;
  CgroupVersion?: string;
  CgroupDriver?: string;
  MemoryLimit?: boolean;
  PidsLimit?: boolean;
  CpuCfsQuota?: boolean;
  DockerRootDir?: string;
  Runtimes?: Record<string, unknown>;
}

export interface CheckContext {
  config: BayConfig;
  docker: Docker;
  /** Set by the engine check when the engine answered. */
  info?: EngineInfo;
  /** Runs a program, for iptables (injectable in tests). */
  run?: (cmd: string[]) => Promise<{ code: number; stderr: string }>;
  uid?: number;
}

const GiB = 1024 ** 3;
const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail });
const warn = (name: string, detail: string, fix: string): CheckResult => ({ name, status: "warn", detail, fix });
const fail = (name: string, detail: string, fix: string): CheckResult => ({ name, status: "fail", detail, fix });

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const engineAddress = (c: BayConfig) => c.driver.host ?? `unix://${c.driver.socket_path}`;
const localEngine = (c: BayConfig) => !c.driver.host || c.driver.host.startsWith("unix://");

export async function checkEngine(ctx: CheckContext): Promise<CheckResult> {
  const where = engineAddress(ctx.config);
  const socket = localEngine(ctx.config) ? (ctx.config.driver.host?.slice("unix://".length) ?? ctx.config.driver.socket_path) : null;
  if (socket && !existsSync(socket)) {
    return fail(
      "engine",
      `no Docker socket at ${socket}`,
      "start the engine (`dockerd &` or `systemctl start docker`), or point BAY_DOCKER_SOCKET / DOCKER_HOST at it",
    );
  }
  try {
    ctx.info = (await withTimeout(ctx.docker.info(), 5000, "docker info")) as EngineInfo;
    return ok("engine", `Docker ${ctx.info.ServerVersion ?? "?"} at ${where}`);
  } catch (e) {
    const msg = errorMessage(e);
    const denied = /EACCES|permission denied/i.test(msg);
    return fail(
      "engine",
      `${where}: ${msg}`,
      denied
        ? `run Bay as root or as a member of the socket's group (ls -l ${socket ?? "the socket"})`
        : "start the engine (`dockerd &` or `systemctl start docker`), or point BAY_DOCKER_SOCKET / DOCKER_HOST at a running one",
    );
  }
}

export function checkCgroups(ctx: CheckContext): CheckResult {
  const info = ctx.info;
  if (!info) return fail("cgroups", "unknown: the engine did not answer", "fix the engine first");
  const missing = [
    info.MemoryLimit === false ? "memory" : null,
    info.PidsLimit === false ? "pids" : null,
    info.CpuCfsQuota === false ? "cpu" : null,
  ].filter((x): x is string => x !== null);
  const version = `cgroup v${info.CgroupVersion ?? "?"} (${info.CgroupDriver ?? "?"})`;
  if (missing.length) {
    return fail(
      "cgroups",
      `${version}: the engine cannot enforce ${missing.join(", ")} limits; sandboxes would run unlimited`,
      "enable the controllers: boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) or, on v1, add `cgroup_enable=memory swapaccount=1` to the kernel command line",
    );
  }
  return ok("cgroups", `${version}: memory, pids and cpu limits enforced`);
}

export function checkRuntimes(ctx: CheckContext): CheckResult | null {
  const wanted = [...new Set(ctx.config.profiles.map((p) => p.runtime).filter((r): r is string => !!r))];
  if (wanted.length === 0) return null;
  if (!ctx.info) return fail("runtimes", "unknown: the engine did not answer", "fix the engine first");
  const known = Object.keys(ctx.info.Runtimes ?? {});
  const missing = wanted.filter((r) => !known.includes(r));
  if (missing.length) {
    return fail(
      "runtimes",
      `profiles need runtime(s) ${missing.join(", ")}; the engine has ${known.join(", ") || "none"}`,
      'install the runtime (e.g. `apt-get install runsc`) and register it under "runtimes" in /etc/docker/daemon.json, then reload dockerd',
    );
  }
  return ok("runtimes", `${wanted.join(", ")} registered`);
}

export async function checkImages(ctx: CheckContext, ownImages: ReadonlySet<string>): Promise<CheckResult> {
  if (!ctx.info) return fail("images", "unknown: the engine did not answer", "fix the engine first");
  const byImage = new Map<string, string[]>();
  for (const p of ctx.config.profiles) byImage.set(p.image, [...(byImage.get(p.image) ?? []), p.id]);
  byImage.set(ctx.config.driver.helper_image, [...(byImage.get(ctx.config.driver.helper_image) ?? []), "(workspace helper)"]);
  const missing: string[] = [];
  for (const image of byImage.keys()) {
    const present = await ctx.docker
      .getImage(image)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (!present) missing.push(image);
  }
  if (missing.length === 0) return ok("images", `${byImage.size} present: ${[...byImage.keys()].join(", ")}`);
  const foreign = missing.filter((i) => !ownImages.has(i));
  const fixes = [missing.some((i) => ownImages.has(i)) ? "`bay images build` (or `bun run image:build` in a checkout)" : null];
  if (foreign.length) fixes.push(`\`docker pull\` or build ${foreign.join(", ")} yourself`);
  return fail(
    "images",
    `missing: ${missing.map((i) => `${i} (${byImage.get(i)!.join(", ")})`).join("; ")}`,
    fixes.filter(Boolean).join("; "),
  );
}

export async function checkDatabase(ctx: CheckContext): Promise<CheckResult> {
  const url = ctx.config.database.url;
  const shown = url.replace(/\/\/[^@/]*@/, "//***@").replace(/([?&](authToken|token)=)[^&]*/gi, "$1***");
  if (url.startsWith("file:")) {
    const path = resolve(url.slice("file:".length).split("?")[0]!);
    if (!existsSync(path)) {
      let dir = dirname(path);
      while (!existsSync(dir)) dir = dirname(dir);
      const writable = await access(dir, constants.W_OK).then(
        () => true,
        () => false,
      );
      return writable
        ? ok("database", `${path} does not exist yet; Bay creates it at start`)
        : fail(
            "database",
            `${path} does not exist and ${dir} is not writable`,
            `make ${dir} writable for Bay, or set BAY_DB_URL elsewhere`,
          );
    }
  }
  const db = createClient({ url, authToken: ctx.config.database.auth_token });
  try {
    const rs = await withTimeout(
      db.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").catch(async (e: unknown) => {
        if (/no such table/i.test(errorMessage(e))) return { rows: [{ v: 0 }] };
        throw e;
      }),
      5000,
      "database",
    );
    const version = Number(rs.rows[0]?.v ?? 0);
    const latest = Math.max(...MIGRATIONS.map((m) => m.version));
    if (version > latest) {
      return fail(
        "database",
        `${shown}: schema ${version} is newer than this Bay's ${latest}`,
        "run the newer Bay that migrated it, or another database",
      );
    }
    return ok("database", `${shown}: reachable, schema ${version}/${latest}${version < latest ? " (Bay migrates at start)" : ""}`);
  } catch (e) {
    return fail(
      "database",
      `${shown}: ${errorMessage(e)}`,
      "check BAY_DB_URL (and BAY_DB_AUTH_TOKEN for a libSQL server), the file's permissions, or that the server runs",
    );
  } finally {
    db.close();
  }
}

/** iptables rules for profiles on Bay's managed networks (`network: egress | none`): root, iptables, dockerd's DOCKER-USER chain. */
export async function checkNetworkRules(ctx: CheckContext): Promise<CheckResult> {
  const needing = ctx.config.profiles.filter((p) => typeof p.network === "string").map((p) => p.id);
  const problems: string[] = [];
  if (!localEngine(ctx.config)) problems.push("the engine is remote; rules must be installed on its host");
  if ((ctx.uid ?? process.getuid?.() ?? 0) !== 0) problems.push("Bay is not root");
  if (!Bun.which("iptables")) problems.push("iptables is not installed");
  else if (problems.length === 0 && ctx.run) {
    const r = await ctx.run(["iptables", "-w", "5", "-S", "DOCKER-USER"]);
    if (r.code !== 0) problems.push(`iptables -S DOCKER-USER failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  if (problems.length === 0)
    return ok("network rules", `iptables usable, DOCKER-USER present${needing.length ? ` (needed by ${needing.join(", ")})` : ""}`);
  const fix = "run Bay as root on the Docker host with iptables installed (`apt-get install iptables`) and dockerd managing iptables";
  if (needing.length === 0) return warn("network rules", `${problems.join("; ")}; no profile uses Bay's managed networks now`, fix);
  return fail("network rules", `${problems.join("; ")}; profiles ${needing.join(", ")} would fail to start`, fix);
}

/** Bay's listening address: free, or already a Bay. */
export async function checkPort(ctx: CheckContext): Promise<CheckResult> {
  const { host, port } = ctx.config.server;
  if (port === 0) return ok("port", `${host}: an ephemeral port is picked at start`);
  try {
    const probe = Bun.listen({ hostname: host, port, socket: { data() {} } });
    probe.stop(true);
    return ok("port", `${host}:${port} is free`);
  } catch (e) {
    const health = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${port}/health`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.json() as Promise<{ status?: string }>)
      .catch(() => null);
    if (health?.status)
      return warn(
        "port",
        `${host}:${port} is taken by a running Bay (${health.status})`,
        "stop it first, or give this one another BAY_PORT",
      );
    return fail(
      "port",
      `${host}:${port} cannot be bound: ${errorMessage(e)}`,
      "stop the program using it (`ss -ltnp`), or set BAY_PORT / server.port to a free port",
    );
  }
}

/** Free space where images and volumes live (the engine's root) and where the database file lives. */
export function checkDisk(ctx: CheckContext): CheckResult {
  const places: Array<[string, string]> = [];
  if (ctx.info?.DockerRootDir && localEngine(ctx.config)) places.push(["Docker root", ctx.info.DockerRootDir]);
  const url = ctx.config.database.url;
  if (url.startsWith("file:")) {
    let dir = dirname(resolve(url.slice("file:".length).split("?")[0]!));
    while (!existsSync(dir)) dir = dirname(dir);
    places.push(["database", dir]);
  }
  if (places.length === 0) return ok("disk", "nothing local to measure (remote engine and database)");
  const low: string[] = [];
  const seen: string[] = [];
  let worst: CheckStatus = "ok";
  for (const [what, path] of places) {
    let free: number;
    try {
      const s = statfsSync(path);
      free = s.bavail * s.bsize;
    } catch (e) {
      low.push(`${what} ${path}: ${errorMessage(e)}`);
      worst = "warn";
      continue;
    }
    const gib = (free / GiB).toFixed(1);
    seen.push(`${what} ${path}: ${gib} GiB free`);
    if (free < GiB) {
      low.push(`${what} ${path}: only ${gib} GiB free`);
      worst = "fail";
    } else if (free < 5 * GiB && worst === "ok") {
      low.push(`${what} ${path}: ${gib} GiB free`);
      worst = "warn";
    }
  }
  if (worst === "ok") return ok("disk", seen.join("; "));
  const fix =
    "free space: remove unused images and stopped containers (`docker image prune`, `docker container prune`), or move the data to a larger disk";
  return worst === "fail" ? fail("disk", low.join("; "), fix) : warn("disk", low.join("; "), fix);
}

/** Directories one sandbox's runtime may watch at once (Ship's SHIP_WATCH_MAX_TOTAL_DIRS default). */
const WATCHES_PER_RUNTIME = 8192;

/**
 * The host's inotify watches per uid. Every sandbox runs as the same uid, so they share
 * one budget: each runtime may hold up to WATCHES_PER_RUNTIME of it, and once it is
 * spent every sandbox's file watches fail. `read`: the sysctl's text (tests inject it).
 */
export function checkFileWatches(
  ctx: CheckContext,
  read: () => string = () => readFileSync("/proc/sys/fs/inotify/max_user_watches", "utf8"),
): CheckResult {
  if (!localEngine(ctx.config)) return ok("file watches", "the engine is remote: its host's limit applies there");
  let max: number;
  try {
    max = Number.parseInt(read().trim(), 10);
  } catch (e) {
    return warn("file watches", `fs.inotify.max_user_watches unreadable: ${errorMessage(e)}`, "check the host's inotify limits");
  }
  if (!Number.isFinite(max)) return warn("file watches", "fs.inotify.max_user_watches is not a number", "check the host's inotify limits");
  const runtimes = Math.floor(max / WATCHES_PER_RUNTIME);
  const detail = `fs.inotify.max_user_watches ${max}: ${runtimes} sandboxes watching large trees at once (${WATCHES_PER_RUNTIME} each) before watches fail for all`;
  if (runtimes >= 8) return ok("file watches", detail);
  return warn("file watches", detail, "raise it: sysctl -w fs.inotify.max_user_watches=1048576 (and in /etc/sysctl.d/ to keep it)");
}
