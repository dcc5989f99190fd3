/**
 * The fuzz loop: generate a batch, send it with bounded concurrency (requests
 * that stop compute run alone), judge every answer, then check that Bay is
 * still alive and logged no escaped error. A crash or an escaped error is
 * pinned on one request by replaying the batch's suspects one at a time on a
 * restarted Bay.
 */
import { LOG_FLUSH_MS } from "../../src/bay/logger.ts";
import type { BayUnderTest } from "../lib/bay-under-test.ts";
import { Rng } from "../lib/rng.ts";
import { judge } from "./check.ts";
import { e2bSandboxOf } from "./e2b.ts";
import { type Example, exampleOf, type Findings } from "./findings.ts";
import type { FixtureKeeper } from "./fixtures.ts";
import type { RequestGenerator } from "./generate.ts";
import type { FuzzRequest, Resolver } from "./request.ts";
import { type Outcome, send } from "./send.ts";
import type { RuntimeEvents } from "./runtime-events.ts";
import type { Contract } from "./spec.ts";

export interface RunLimits {
  seed: number;
  /** Index of the first request sent (earlier ones are generated and skipped, to replay a stretch of a run). */
  from: number;
  requests: number;
  seconds: number;
  concurrency: number;
  batchSize: number;
}

/** Log lines of Bay's process-level policy: an error no request owned. */
const ESCAPED = /keeps serving/;
const MAX_SUSPECTS = 60;

export class FuzzRunner {
  private logSeen = 0;
  /** Requests that reached a sandbox route, for pinning a Ship crash on what was in flight. */
  private readonly touched: Array<{ sandbox: string; from: number; to: number; example: Example }> = [];
  private readonly bisected = new Set<string>();

  constructor(
    private readonly bay: BayUnderTest,
    private readonly contract: Contract,
    private readonly generator: RequestGenerator,
    private readonly keeper: FixtureKeeper,
    private readonly resolve: Resolver,
    private readonly findings: Findings,
    private readonly events: RuntimeEvents,
  ) {}

  async run(limits: RunLimits): Promise<void> {
    const rng = new Rng(limits.seed);
    const deadline = Date.now() + limits.seconds * 1000;
    let index = 0;
    this.logSeen = this.bay.process.logs.length;
    // Requests before `from` are generated (the sequence depends on them) but not sent.
    while (index < limits.from) this.generator.next(rng, index++);
    const end = limits.from + limits.requests;
    while (index < end && Date.now() < deadline) {
      const batch: FuzzRequest[] = [];
      for (let i = 0; i < limits.batchSize && index < end; i++) batch.push(this.generator.next(rng, index++));
      await this.runBatch(batch, limits.concurrency);
      await this.keeper.maintain(this.bay.url).catch((e) => console.error(`fixture upkeep failed: ${(e as Error).message}`));
      if (index % 500 < limits.batchSize) {
        process.stderr.write(`fuzz: ${index} generated, ${this.findings.sent} sent, ${this.findings.groups.size} finding groups\n`);
      }
    }
  }

  /** Ship containers that exited by themselves during the run (each with the requests in flight to its sandbox and its last output), and errors a Ship said escaped its code. */
  async reportShipIncidents(): Promise<void> {
    for (const d of this.events.crashes()) {
      const inFlight = this.touched.filter((t) => t.sandbox === d.sandbox && t.from <= d.at + 1000 && t.to >= d.at - 5000);
      this.findings.incidents.push({
        kind: "Ship crash",
        what: `the Ship container of ${d.sandbox} exited by itself with code ${d.exitCode}`,
        suspects: inFlight.length,
        inFlight: inFlight.slice(0, 8).map((t) => t.example),
        ...(d.lastLines ? { lastLines: await d.lastLines } : {}),
      });
    }
    for (const e of this.events.escapes) {
      this.findings.incidents.push({
        kind: "Ship escaped error",
        what: `the Ship of ${e.sandbox} said: ${e.line}`,
        suspects: 0,
        inFlight: [],
      });
    }
  }

  private async runBatch(batch: FuzzRequest[], concurrency: number): Promise<void> {
    let dead = false;
    const proc = this.bay.process;
    void proc.exited.then(() => {
      dead = true;
    });
    const started: FuzzRequest[] = [];
    const one = async (req: FuzzRequest) => {
      if (dead) return;
      started.push(req);
      const t0 = Date.now();
      const o = await send(req, this.resolve, port(this.bay.url));
      if (dead) return; // the answer (or its absence) is the crash's doing
      this.keeper.note(req, this.resolve, o);
      const target = this.resolve(req.target);
      const sandbox = /^\/v1\/sandboxes\/([^/?]+)/.exec(target)?.[1] ?? e2bSandboxOf(req, target, this.resolve);
      const fault = sandbox ? this.events.explain(safeDecode(sandbox), t0, Date.now()) : undefined;
      this.findings.record(req, o, judge(this.contract, req, target, o, fault));
      if (sandbox) this.touched.push({ sandbox: safeDecode(sandbox), from: t0, to: Date.now(), example: exampleOf(req, o) });
    };
    // Exclusive requests split the batch; the rest run `concurrency` at a time.
    let i = 0;
    while (i < batch.length && !dead) {
      if (batch[i]!.exclusive) {
        await one(batch[i++]!);
        continue;
      }
      let j = i;
      while (j < batch.length && !batch[j]!.exclusive) j++;
      const segment = batch.slice(i, j);
      i = j;
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, segment.length) }, async () => {
          while (next < segment.length && !dead) await one(segment[next++]!);
        }),
      );
    }
    await this.afterBatch(started, proc);
  }

  private async afterBatch(suspects: FuzzRequest[], proc: BayUnderTest["process"]): Promise<void> {
    const health = await this.healthy();
    const exit = await Promise.race([proc.exited, Bun.sleep(health ? 0 : 2000).then(() => null)]);
    if (exit) {
      const what = `Bay exited (${exit.signal ?? `code ${exit.code}`}); last log: ${lastLogs(proc.logs)}`;
      await this.bay.start();
      this.logSeen = this.bay.process.logs.length;
      const culprit = await this.isolate(suspects, async () => !(await this.aliveAfter()));
      this.findings.incidents.push({ kind: "crash", what, suspects: suspects.length, ...(culprit ? { culprit } : {}) });
      return;
    }
    if (!health) {
      this.findings.incidents.push({
        kind: "unresponsive",
        what: "GET /health did not answer 200 within 15 s while the process ran",
        suspects: suspects.length,
      });
      return;
    }
    await Bun.sleep(LOG_FLUSH_MS + 50); // Bay writes its lines in batches: the batch's last ones
    const escaped = this.newLogs().filter((l) => ESCAPED.test(l.msg));
    for (const line of escaped) {
      const what = `${line.msg}: ${String(line.error ?? "").slice(0, 200)}`;
      if (this.bisected.has(what)) {
        this.findings.incidents.push({ kind: "escaped error", what, suspects: suspects.length });
        continue;
      }
      this.bisected.add(what);
      const culprit = await this.isolate(suspects, async () => {
        await Bun.sleep(300);
        return this.newLogs().some((l) => ESCAPED.test(l.msg));
      });
      this.findings.incidents.push({ kind: "escaped error", what, suspects: suspects.length, ...(culprit ? { culprit } : {}) });
    }
  }

  /** Replays suspects one at a time (most recent first); the first that triggers `happened` is the culprit. */
  private async isolate(suspects: FuzzRequest[], happened: () => Promise<boolean>): Promise<Example | undefined> {
    for (const req of [...suspects].reverse().slice(0, MAX_SUSPECTS)) {
      this.findings.replayed++;
      const o: Outcome = await send(req, this.resolve, port(this.bay.url));
      if (await happened()) {
        if (!(await this.aliveAfter())) {
          await this.bay.start();
        }
        this.logSeen = this.bay.process.logs.length;
        return exampleOf(req, o);
      }
    }
    return undefined;
  }

  /** True when Bay still runs and answers /health shortly after a request. */
  private async aliveAfter(): Promise<boolean> {
    const exited = await Promise.race([this.bay.process.exited.then(() => true), Bun.sleep(500).then(() => false)]);
    return !exited && (await this.healthy());
  }

  private async healthy(): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const res = await fetch(`${this.bay.url}/health`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        if (res.status === 200) return true;
      } catch {
        // retried below
      }
      await Bun.sleep(500);
    }
    return false;
  }

  private newLogs() {
    const logs = this.bay.process.logs;
    const fresh = logs.slice(this.logSeen);
    this.logSeen = logs.length;
    return fresh;
  }
}

const port = (url: string): number => Number(new URL(url).port);

/** Percent-decoding that leaves invalid sequences (which the fuzzer sends on purpose) as they are. */
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function lastLogs(logs: Array<{ msg: string; level: string }>): string {
  return logs
    .slice(-3)
    .map((l) => JSON.stringify(l).slice(0, 300))
    .join(" / ");
}
