/**
 * Docker's own record of the run's containers dying (`die`, `oom`), read from
 * the engine's event stream filtered by the Bay's instance id. A 502 on a
 * sandbox whose container died during the call is the runtime's doing (a stop
 * racing the call, the container's own memory limit), not a contract
 * violation; the report lists these deaths with their exit codes instead.
 */
import { docker } from "../lib/bay-under-test.ts";

export interface ContainerDeath {
  at: number;
  sandbox: string;
  action: string;
  exitCode: string;
}

export class RuntimeEvents {
  readonly deaths: ContainerDeath[] = [];
  private stream: NodeJS.ReadableStream | null = null;

  /** Starts following the engine's events for containers labelled with `instanceId`. */
  async start(instanceId: string): Promise<void> {
    const stream = (await docker.getEvents({
      filters: { type: ["container"], event: ["die", "oom"], label: [`bay.instance_id=${instanceId}`] },
    })) as NodeJS.ReadableStream;
    this.stream = stream;
    let buf = "";
    stream.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const e = JSON.parse(line) as { Action?: string; timeNano?: number; Actor?: { Attributes?: Record<string, string> } };
          const attrs = e.Actor?.Attributes ?? {};
          if (!attrs["bay.sandbox_id"]) continue;
          this.deaths.push({
            at: Math.floor((e.timeNano ?? Date.now() * 1e6) / 1e6),
            sandbox: attrs["bay.sandbox_id"],
            action: e.Action ?? "?",
            exitCode: attrs.exitCode ?? "",
          });
        } catch {
          // not an event line
        }
      }
    });
    stream.on("error", () => {});
  }

  stop(): void {
    (this.stream as unknown as { destroy?: () => void } | null)?.destroy?.();
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
        d.action === "die" &&
        !["0", "137", "143"].includes(d.exitCode) &&
        !oom.some((o) => o.sandbox === d.sandbox && Math.abs(o.at - d.at) < 2000),
    );
  }
}
