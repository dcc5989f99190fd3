/**
 * `bay doctor`: checks, with Bay's own configuration, what Bay needs from this
 * machine — the engine socket, cgroup limits, OCI runtimes the profiles name,
 * images, the database, iptables for restricted egress, the listening port
 * and free disk — and prints each with the fix. Exit 1 when any check fails.
 */
import { Docker } from "../drivers/docker/dockerode.ts";
import { ConfigError, loadConfig, shipImages, type BayConfig } from "../config.ts";
import {
  type CheckContext,
  type CheckResult,
  checkCgroups,
  checkDatabase,
  checkDisk,
  checkFileWatches,
  checkEngine,
  checkImages,
  checkNetworkRules,
  checkPort,
  checkRuntimes,
} from "../doctor/checks.ts";
import { connectionOptions } from "../drivers/docker/connect-mode.ts";
import { errorMessage } from "../logger.ts";
import { allowOnly, type CliIo, parseArgs } from "./args.ts";

export const DOCTOR_USAGE = `usage: bay doctor [--json]

Checks what Bay needs on this machine, with the same configuration as \`bay serve\`
(BAY_CONFIG, BAY_*): engine socket, cgroups, runtimes, images, database, network
rules, port, free disk. Prints a fix for each problem; exits 1 if any check fails.`;

async function run(cmd: string[]): Promise<{ code: number; stderr: string }> {
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  return { code, stderr };
}

/** Runs every check in order; the engine check first, since several read what it learns. */
export async function runChecks(config: BayConfig, env: Record<string, string | undefined>): Promise<CheckResult[]> {
  const docker = new Docker(connectionOptions(config.driver.host, config.driver.socket_path));
  const ctx: CheckContext = { config, docker, run };
  const own = new Set(Object.values(shipImages(env.BAY_SHIP_TAG || undefined)));
  const results: CheckResult[] = [await checkEngine(ctx), checkCgroups(ctx)];
  const runtimes = checkRuntimes(ctx);
  if (runtimes) results.push(runtimes);
  results.push(
    await checkImages(ctx, own),
    await checkDatabase(ctx),
    await checkNetworkRules(ctx),
    await checkPort(ctx),
    checkDisk(ctx),
    checkFileWatches(ctx),
  );
  return results;
}

const MARK: Record<CheckResult["status"], string> = { ok: "ok  ", warn: "WARN", fail: "FAIL" };

export async function runDoctor(argv: string[], io: CliIo): Promise<number> {
  let json = false;
  try {
    const args = parseArgs(argv, { bools: ["json"] });
    if (args.flags.has("help")) {
      io.out(DOCTOR_USAGE);
      return 0;
    }
    allowOnly(args, ["json"], 0);
    json = args.flags.has("json");
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  let config: BayConfig;
  try {
    config = loadConfig(io.env);
  } catch (e) {
    const problems = e instanceof ConfigError ? e.message : errorMessage(e);
    if (json)
      io.out(
        JSON.stringify(
          { ok: false, checks: [{ name: "config", status: "fail", detail: problems, fix: "correct BAY_CONFIG / BAY_* as listed" }] },
          null,
          2,
        ),
      );
    else io.err(`FAIL  config  ${problems}`);
    return 1;
  }
  const results = await runChecks(config, io.env);
  const failed = results.filter((r) => r.status === "fail").length;
  if (json) {
    io.out(JSON.stringify({ ok: failed === 0, checks: results }, null, 2));
    return failed ? 1 : 0;
  }
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) {
    io.out(`${MARK[r.status]}  ${r.name.padEnd(width)}  ${r.detail}`);
    if (r.fix) io.out(`${" ".repeat(width + 8)}fix: ${r.fix}`);
  }
  const warned = results.filter((r) => r.status === "warn").length;
  io.out(
    failed
      ? `\n${failed} check(s) failed${warned ? `, ${warned} warning(s)` : ""}`
      : `\nall checks passed${warned ? ` (${warned} warning(s))` : ""}`,
  );
  return failed ? 1 : 0;
}
