/**
 * A Bay process started by a tool (fuzzer, soak) for itself alone: its own temp
 * directory, libSQL file, TMPDIR (so its upload spools can be counted) and a
 * unique BAY_INSTANCE_ID labelling every container and volume it makes. It can
 * be killed and restarted on the same database, and `cleanup()` removes exactly
 * what carries its instance id. Starts Bay through tests/support/bay-process.ts.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultProfiles } from "../../src/bay/config.ts";
import { startBayProcess, type BayProcess } from "../../tests/support/bay-process.ts";
import { SHIP_TAG } from "../../tests/support/images.ts";
import { docker, requireShipImages } from "../../tests/e2e/support/e2e.ts";
import { removeLabelled } from "../../tests/e2e/support/docker-fixtures.ts";

export { docker };

export interface BayUnderTestOptions {
  /** Prefix of the instance id and temp directory, e.g. "fuzz". */
  name: string;
  /** Bay configuration (written as BAY_CONFIG); `profiles` defaults to Bay's own on BAY_SHIP_TAG. */
  config: Record<string, unknown>;
  logLevel?: "debug" | "info" | "warn" | "error";
}

/** Docker objects and spool directories still carrying this run's marks. */
export interface Leftovers {
  containers: string[];
  volumes: string[];
  /** Upload spools, and in connect_mode unix_socket the socket directories of this installation. */
  spools: string[];
}

export class BayUnderTest {
  readonly dir: string;
  readonly dbPath: string;
  /** Bay's TMPDIR: upload spools (`bay-spool/<pid>/up-*`) land here and nowhere else. */
  readonly tmpDir: string;
  readonly instanceId: string;
  private current: BayProcess | null = null;

  private constructor(private readonly opts: BayUnderTestOptions) {
    this.instanceId = `${opts.name}-${crypto.randomUUID().slice(0, 12)}`;
    this.dir = mkdtempSync(join(tmpdir(), `bay-${opts.name}-`));
    this.dbPath = join(this.dir, "bay.db");
    this.tmpDir = join(this.dir, "tmp");
    mkdirSync(this.tmpDir);
  }

  /** Checks Docker and the Ship images, then starts Bay; an interrupt (SIGINT, SIGTERM) cleans up before exiting. */
  static async launch(opts: BayUnderTestOptions): Promise<BayUnderTest> {
    await requireShipImages();
    const b = new BayUnderTest(opts);
    const interrupted = (signal: string) => {
      process.stderr.write(`${opts.name}: ${signal}: stopping Bay and removing what it made\n`);
      void b.cleanup().finally(() => process.exit(130));
    };
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    await b.start();
    return b;
  }

  /** The running process (throws when none runs). */
  get process(): BayProcess {
    if (!this.current) throw new Error("Bay is not running");
    return this.current;
  }

  get url(): string {
    return this.process.url;
  }

  /** Starts Bay (again) on the same database and instance id, on a new port. */
  async start(): Promise<BayProcess> {
    const config = { profiles: defaultProfiles(SHIP_TAG), ...this.opts.config };
    this.current = await startBayProcess({
      dbPath: this.dbPath,
      instanceId: this.instanceId,
      dir: this.dir,
      config,
      env: {
        BAY_LOG_LEVEL: this.opts.logLevel ?? "warn",
        TMPDIR: this.tmpDir,
        ...(process.env.BAY_SHIP_TAG ? { BAY_SHIP_TAG: process.env.BAY_SHIP_TAG } : {}),
        // The soak and the fuzzer can run against the socket transport too.
        ...(process.env.BAY_CONNECT_MODE ? { BAY_CONNECT_MODE: process.env.BAY_CONNECT_MODE } : {}),
        ...(process.env.BAY_SOCKET_DIR ? { BAY_SOCKET_DIR: process.env.BAY_SOCKET_DIR } : {}),
      },
    });
    return this.current;
  }

  /** Ends the process with `signal` and waits for it. */
  async stop(signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    const p = this.current;
    this.current = null;
    await p?.kill(signal);
  }

  /** What is still labelled with this instance id, and spools left in Bay's TMPDIR. */
  async leftovers(): Promise<Leftovers> {
    const label = [`bay.instance_id=${this.instanceId}`];
    const containers = await docker.listContainers({ all: true, filters: { label } });
    const { Volumes } = await docker.listVolumes({ filters: { label } });
    // Bay spools uploads in <TMPDIR>/bay-spool/<pid>/up-* (or, when that base is not
    // private, <TMPDIR>/bay-spool-<pid>-*/up-*), one directory per upload in progress.
    const list = (dir: string) => {
      try {
        return readdirSync(dir);
      } catch {
        return []; // already gone
      }
    };
    const base = join(this.tmpDir, "bay-spool");
    const spools = [
      ...list(base).flatMap((pid) => list(join(base, pid)).map((slot) => `bay-spool/${pid}/${slot}`)),
      ...list(this.tmpDir)
        .filter((n) => n.startsWith("bay-spool-"))
        .flatMap((d) => list(join(this.tmpDir, d)).map((slot) => `${d}/${slot}`)),
    ];
    if (process.env.BAY_CONNECT_MODE === "unix_socket") {
      const sockets = join(process.env.BAY_SOCKET_DIR ?? "/run/bay/ships", `bay-${this.instanceId}`);
      spools.push(...list(sockets).map((d) => `socket directory ${join(sockets, d)}`));
    }
    const describe = (c: (typeof containers)[number]) => {
      const l = c.Labels;
      const owner = l["bay.sandbox_id"]
        ? `sandbox ${l["bay.sandbox_id"]}`
        : l["bay.workspace_id"]
          ? `workspace ${l["bay.workspace_id"]}`
          : "no sandbox or workspace";
      return `${(c.Names[0] ?? c.Id).replace(/^\//, "")} (${c.State}, ${owner})`;
    };
    return { containers: containers.map(describe), volumes: (Volumes ?? []).map((v) => v.Name), spools };
  }

  /** Stops Bay and removes everything labelled with this instance id and the temp directory. */
  async cleanup(): Promise<void> {
    await this.stop("SIGTERM").catch(() => {});
    await removeLabelled(docker, { "bay.instance_id": this.instanceId }).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
