/**
 * Docker's own record of the run's containers dying (`die`, `oom`), read from
 * the engine's event stream filtered by the Bay's instance id. A 502 on a
 * sandbox whose container died during the call is the runtime's doing (a stop
 * racing the call, the container's own memory limit), not a contract
 * violation; the report lists these deaths with their exit codes instead.
 *
 * Each container's output is followed from its start, so a crash's incident can
 * say what the Ship said last (by the time a `die` is read, Bay may already be
 * removing the container, and the engine no longer hands its logs out).
 */
import { PassThrough } from "node:stream";
import { docker } from "../lib/bay-under-test.ts";

/** Exit codes a stop explains: Ship's own clean stop, SIGKILL (Bay's destroy, the OOM killer), SIGTERM. */
const STOP_CODES = ["0", "137", "143"];
/** How much of each container's latest output is kept. */
const KEEP_CHARS = 4000;
/** How long after a `die` its last output may still be arriving. */
const FLUSH_MS = 300;

export interface ContainerDeath {
  at: number;
  sandbox: string;
  action: string;
  exitCode: string;
  /** A crash's last output. */
  lastLines?: Promise<string>;
}

/** A line in which a Ship said that an error escaped its code (it keeps serving). */
export interface ShipEscape {
  sandbox: string;
  line: string;
}

/** What Ship's process policy (src/ship/main.ts) says when an error escapes. */
const ESCAPED = /^\[ship\] (uncaught exception|unhandled rejection); Ship keeps serving: .*/;

interface EngineEvent {
  Action?: string;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export class RuntimeEvents {
  readonly deaths: ContainerDeath[] = [];
  readonly escapes: ShipEscape[] = [];
  private stream: NodeJS.ReadableStream | null = null;
  /** The latest output of each followed container. */
  private readonly output = new Map<string, { text: string; stop: () => void }>();

  /** Starts following the engine's events for containers labelled with `instanceId`. */
  async start(instanceId: string): Promise<void> {
    const stream = (await docker.getEvents({
      filters: { type: ["container"], event: ["start", "die", "oom", "destroy"], label: [`bay.instance_id=${instanceId}`] },
    })) as NodeJS.ReadableStream;
    this.stream = stream;
    let buf = "";
    stream.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let e: EngineEvent;
        try {
          e = JSON.parse(line) as EngineEvent;
        } catch {
          continue; // not an event line
        }
        this.onEvent(e);
      }
    });
    stream.on("error", () => {});
  }

  stop(): void {
    (this.stream as unknown as { destroy?: () => void } | null)?.destroy?.();
    for (const o of this.output.values()) o.stop();
    this.output.clear();
  }

  private onEvent(e: EngineEvent): void {
    const attrs = e.Actor?.Attributes ?? {};
    const id = e.Actor?.ID;
    if (!attrs["bay.sandbox_id"] || !id) return;
    if (e.Action === "start") return void this.follow(id, attrs["bay.sandbox_id"]);
    if (e.Action === "destroy") {
      // Its last output is read FLUSH_MS after its death; forget it after that.
      setTimeout(() => this.forget(id), FLUSH_MS * 2).unref();
      return;
    }
    const exitCode = attrs.exitCode ?? "";
    const crashed = e.Action === "die" && !STOP_CODES.includes(exitCode);
    this.deaths.push({
      at: Math.floor((e.timeNano ?? Date.now() * 1e6) / 1e6),
      sandbox: attrs["bay.sandbox_id"],
      action: e.Action ?? "?",
      exitCode,
      ...(crashed ? { lastLines: Bun.sleep(FLUSH_MS).then(() => this.output.get(id)?.text ?? "(no output was read)") } : {}),
    });
  }

  private async follow(id: string, sandbox: string): Promise<void> {
    const kept = { text: "", stop: () => {} };
    this.output.set(id, kept);
    try {
      const logs = (await docker.getContainer(id).logs({ follow: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
      const sink = new PassThrough();
      let partial = "";
      sink.on("data", (chunk: Buffer) => {
        const text = chunk.toString("utf8");
        kept.text = (kept.text + text).slice(-KEEP_CHARS);
        const lines = (partial + text).split("\n");
        partial = (lines.pop() ?? "").slice(-KEEP_CHARS);
        for (const line of lines) if (ESCAPED.test(line)) this.escapes.push({ sandbox, line: line.slice(0, 500) });
      });
      docker.modem.demuxStream(logs, sink, sink);
      logs.on("error", () => {});
      kept.stop = () => (logs as unknown as { destroy?: () => void }).destroy?.();
    } catch (err) {
      kept.text = `(its output could not be followed: ${(err as Error).message})`;
    }
  }

  private forget(id: string): void {
    this.output.get(id)?.stop();
    this.output.delete(id);
  }

  /** How the sandbox's container died between `from` and `to` (ms, with a second of slack), if it did. */
  explain(sandbox: string, from: number, to: number): string | undefined {
    const hits = this.deaths.filter((d) => d.sandbox === sandbox && d.at >= from - 1000 && d.at <= to + 1000);
    if (hits.length === 0) return undefined;
    return hits.map((d) => `${d.action}${d.exitCode ? ` (exit ${d.exitCode})` : ""}`).join(", ");
  }

  /**
   * Deaths that no stop explains: an exit code other than 0 (Ship's own clean
   * stop), 137 (SIGKILL: Bay's destroy, the OOM killer) or 143 (SIGTERM), and no
   * `oom` event with it. A Ship that exits by itself crashed.
   */
  crashes(): ContainerDeath[] {
    const oom = this.deaths.filter((d) => d.action === "oom");
    return this.deaths.filter(
      (d) =>
        d.action === "die" && !STOP_CODES.includes(d.exitCode) && !oom.some((o) => o.sandbox === d.sandbox && Math.abs(o.at - d.at) < 2000),
    );
  }
}
