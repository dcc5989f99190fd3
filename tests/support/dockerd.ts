/**
 * Restarts the local Docker daemon the way an operator (or a crash plus a
 * supervisor) would: find the running dockerd, SIGTERM it, wait for it to exit,
 * start it again with the same command line in its own session, and wait until
 * `docker info` answers. Used by the lifecycle test that proves Bay recovers
 * from a daemon restart. Containers without live-restore stop with the daemon.
 *
 * CI stops "whichever dockerd runs now" (.ci/run), so a restarted daemon does
 * not outlive the run.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

const LOG = "/tmp/dockerd-restart.log";

interface DaemonProcess {
  pid: number;
  argv: string[];
  cwd: string;
}

/** The single running dockerd: its pid, command line and working directory. */
export function findDockerd(): DaemonProcess {
  const found: DaemonProcess[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== "dockerd") continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8")
        .split("\0")
        .filter((a) => a.length > 0);
      found.push({ pid: Number(entry), argv, cwd: readlinkSync(`/proc/${entry}/cwd`) });
    } catch {
      // The process went away while we looked.
    }
  }
  if (found.length !== 1) throw new Error(`expected exactly one running dockerd, found ${found.length}`);
  return found[0]!;
}

/** Whether `docker info` answers. */
export function dockerAnswers(): boolean {
  const r = Bun.spawnSync(["docker", "info", "--format", "{{.ServerVersion}}"], { stdout: "ignore", stderr: "ignore" });
  return r.exitCode === 0;
}

async function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(200);
  }
}

/** SIGTERMs the running dockerd, starts it again with the same arguments, waits until it answers. */
export async function restartDockerd(): Promise<void> {
  const daemon = findDockerd();
  process.kill(daemon.pid, "SIGTERM");
  // It stops its containers (up to their stop timeout) before it exits.
  await waitFor(`dockerd ${daemon.pid} to exit`, () => !existsSync(`/proc/${daemon.pid}`), 90_000);
  const log = openSync(LOG, "a");
  try {
    // setsid -f: a new session, reparented to init, so it outlives the test process.
    const proc = Bun.spawn(["setsid", "-f", ...daemon.argv], {
      cwd: existsSync(daemon.cwd) ? daemon.cwd : "/",
      stdin: "ignore",
      stdout: log,
      stderr: log,
    });
    await proc.exited;
  } finally {
    closeSync(log);
  }
  await waitFor("docker info to answer after the restart", dockerAnswers, 90_000);
}
