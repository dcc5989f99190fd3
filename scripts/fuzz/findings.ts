/**
 * Everything a fuzz run found, grouped by operation and reasons with the
 * smallest request of each group as its repro, plus the run's counters. Prints
 * the summary and writes the JSON report.
 */
import { writeFileSync } from "node:fs";
import type { Verdict } from "./check.ts";
import { type FuzzRequest, renderRequest, requestSize, shorten } from "./request.ts";
import type { Outcome } from "./send.ts";

export interface Example {
  index: number;
  strategy: string;
  mutation: string;
  request: string;
  status: number | string;
  answer: string;
  details: string[];
}

export interface Group {
  op: string;
  reasons: string[];
  count: number;
  example: Example;
  exampleSize: number;
}

export interface Incident {
  kind: "crash" | "escaped error" | "unresponsive" | "Ship crash" | "Ship escaped error";
  what: string;
  /** The request that reproduced it alone, if one did. */
  culprit?: Example;
  suspects: number;
  /** Requests in flight when it happened (when no single culprit was isolated). */
  inFlight?: Example[];
  /** A crashed container's last lines of output. */
  lastLines?: string;
}

const answerOf = (o: Outcome): string =>
  o.kind === "response"
    ? shorten(new TextDecoder().decode(o.body.subarray(0, 400)), 300)
    : `${o.kind}${o.detail ? `: ${shorten(o.detail, 200)}` : ""}`;

export function exampleOf(req: FuzzRequest, o: Outcome, details: string[] = []): Example {
  return {
    index: req.index,
    strategy: req.strategy,
    mutation: req.mutation,
    request: renderRequest(req),
    status: o.kind === "response" ? o.status : o.kind,
    answer: answerOf(o),
    details,
  };
}

export class Findings {
  readonly groups = new Map<string, Group>();
  readonly incidents: Incident[] = [];
  sent = 0;
  replayed = 0;
  refusedByClient = 0;
  readonly statuses = new Map<string, number>();
  readonly perOperation = new Map<string, { sent: number; success: number; ms: number }>();
  /** Requests by the API of the operation they aimed at. */
  readonly perApi = new Map<string, { sent: number; success: number; operations: Set<string>; succeeded: Set<string> }>();
  readonly serverErrors = { total: 0, legit: new Map<string, number>() };
  /** Answers given by the HTTP server under Bay, as documented (known.ts), by reason. */
  readonly known = new Map<string, number>();
  leftovers: string[] = [];
  /** Exit codes of the Ship containers Docker saw die during the run (stops included). */
  containerDeaths: string[] = [];

  /** Records one judged request. */
  record(req: FuzzRequest, o: Outcome, v: Verdict): void {
    if (o.kind === "refused") {
      this.refusedByClient++;
      return;
    }
    this.sent++;
    const key = o.kind === "response" ? String(o.status) : o.kind;
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
    const per = this.perOperation.get(req.aim) ?? { sent: 0, success: 0, ms: 0 };
    per.sent++;
    per.ms += o.ms;
    if (v.op === req.aim && o.status >= 200 && o.status < 300) per.success++;
    this.perOperation.set(req.aim, per);
    const api = this.perApi.get(req.api ?? "bay") ?? { sent: 0, success: 0, operations: new Set(), succeeded: new Set() };
    api.sent++;
    api.operations.add(req.aim);
    if (v.op === req.aim && o.status >= 200 && o.status < 300) {
      api.success++;
      api.succeeded.add(req.aim);
    }
    this.perApi.set(req.api ?? "bay", api);
    if (v.serverError) {
      this.serverErrors.total++;
      if (v.serverError.legit) {
        const k = `${v.serverError.status} ${v.serverError.code}${v.serverError.cause ? ` (${v.serverError.cause})` : ""}`;
        this.serverErrors.legit.set(k, (this.serverErrors.legit.get(k) ?? 0) + 1);
      }
    }
    if (v.known) this.known.set(v.known, (this.known.get(v.known) ?? 0) + 1);
    if (v.violations.length === 0) return;
    const reasons = [...new Set(v.violations)].sort();
    const groupKey = `${v.op} | ${reasons.join(" + ")}`;
    const size = requestSize(req);
    const g = this.groups.get(groupKey);
    if (!g) this.groups.set(groupKey, { op: v.op, reasons, count: 1, example: exampleOf(req, o, v.details), exampleSize: size });
    else {
      g.count++;
      if (size < g.exampleSize) {
        g.example = exampleOf(req, o, v.details);
        g.exampleSize = size;
      }
    }
  }

  get findingCount(): number {
    return this.groups.size + this.incidents.length + (this.leftovers.length ? 1 : 0);
  }

  /** The human summary. */
  print(meta: { seed: number; seconds: number; requested: number }): void {
    const lines: string[] = [];
    lines.push(
      `fuzz: seed ${meta.seed}, ${this.sent} requests sent (${meta.requested} asked) in ${meta.seconds.toFixed(0)} s, ${this.replayed} replayed to isolate incidents`,
    );
    lines.push(
      `statuses: ${[...this.statuses]
        .sort()
        .map(([k, n]) => `${k}×${n}`)
        .join(" ")}`,
    );
    lines.push(
      `per API: ${[...this.perApi]
        .map(([k, a]) => `${k} ${a.sent} sent (${a.success} 2xx), ${a.operations.size} operations aimed at, ${a.succeeded.size} with a 2xx`)
        .join("; ")}`,
    );
    const legit = [...this.serverErrors.legit].map(([k, n]) => `${k}×${n}`).join(", ") || "none";
    lines.push(`5xx: ${this.serverErrors.total} (explained by the runtime: ${legit})`);
    const byExit = new Map<string, number>();
    for (const c of this.containerDeaths) byExit.set(c, (byExit.get(c) ?? 0) + 1);
    lines.push(
      `Ship containers that died during the run (stops included): ${this.containerDeaths.length}${byExit.size ? ` (exit ${[...byExit].map(([c, n]) => `${c}×${n}`).join(", ")})` : ""}`,
    );
    if (this.known.size)
      lines.push(`documented limits of Bun's HTTP server (not findings): ${[...this.known].map(([k, n]) => `${k} ×${n}`).join("; ")}`);
    if (this.refusedByClient) lines.push(`not sent (the HTTP client refused them): ${this.refusedByClient}`);
    const slow = [...this.perOperation]
      .map(([op, p]) => [op, p.ms / p.sent] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5);
    lines.push(`slowest operations (mean ms): ${slow.map(([op, ms]) => `${op} ${ms.toFixed(0)}`).join(", ")}`);
    const neverOk = [...this.perOperation].filter(([, p]) => p.success === 0).map(([op]) => op);
    if (neverOk.length) lines.push(`operations that never succeeded in this run: ${neverOk.join(", ")}`);
    lines.push(`responses outside the spec: ${[...this.groups.values()].reduce((s, g) => s + g.count, 0)} in ${this.groups.size} groups`);
    const sorted = [...this.groups.values()].sort((a, b) => a.op.localeCompare(b.op) || b.count - a.count);
    for (const g of sorted) {
      lines.push(`  [${g.op}] ${g.reasons.join(" + ")}  (×${g.count})`);
      lines.push(`      repro #${g.example.index} (${g.example.mutation}): ${g.example.request}`);
      lines.push(
        `      → ${g.example.status} ${g.example.answer}${g.example.details.length ? `  [${shorten(g.example.details.join("; "), 200)}]` : ""}`,
      );
    }
    lines.push(
      `crashes of Bay: ${this.incidents.filter((i) => i.kind === "crash").length}; of a Ship: ${this.incidents.filter((i) => i.kind === "Ship crash").length}`,
    );
    for (const i of this.incidents) {
      lines.push(`  ${i.kind}: ${i.what} (${i.suspects} suspect requests)`);
      if (i.culprit) lines.push(`      culprit #${i.culprit.index} (${i.culprit.mutation}): ${i.culprit.request}`);
      else if (i.inFlight)
        for (const e of i.inFlight) lines.push(`      in flight #${e.index} (${e.mutation}) → ${e.status}: ${shorten(e.request, 300)}`);
      else lines.push("      no single request reproduced it alone");
      if (i.lastLines !== undefined)
        lines.push(
          "      its last lines:",
          ...i.lastLines
            .trimEnd()
            .split("\n")
            .map((l) => `        ${l}`),
        );
    }
    if (this.leftovers.length) lines.push(`left behind after deleting everything through Bay: ${this.leftovers.join(", ")}`);
    lines.push(this.findingCount === 0 ? "fuzz: no findings" : `fuzz: ${this.findingCount} findings`);
    console.log(lines.join("\n"));
  }

  /** Writes the JSON report. */
  write(file: string, meta: Record<string, unknown>): void {
    const report = {
      ...meta,
      sent: this.sent,
      replayed: this.replayed,
      refused_by_client: this.refusedByClient,
      statuses: Object.fromEntries(this.statuses),
      known_limitations: Object.fromEntries(this.known),
      server_errors: { total: this.serverErrors.total, explained_by_runtime: Object.fromEntries(this.serverErrors.legit) },
      per_operation: Object.fromEntries(this.perOperation),
      per_api: Object.fromEntries(
        [...this.perApi].map(([k, a]) => [
          k,
          { sent: a.sent, success: a.success, operations: a.operations.size, succeeded: a.succeeded.size },
        ]),
      ),
      findings: [...this.groups.values()].map(({ exampleSize: _, ...g }) => g),
      incidents: this.incidents,
      leftovers: this.leftovers,
      container_exit_codes: this.containerDeaths,
    };
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  }
}
