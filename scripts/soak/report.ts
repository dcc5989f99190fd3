/** The soak's tallies, its printed summary and its JSON report. */
import { writeFileSync } from "node:fs";
import type { FaultRecord } from "./faults.ts";
import type { VerifyResult } from "./ledger.ts";
import type { WriteFailure } from "./writes.ts";

export class SoakReport {
  rounds = 0;
  readonly faults = new Map<string, { injected: number; effective: number }>();
  readonly records: Array<FaultRecord & { round: number }> = [];
  filesChecked = 0;
  bytesChecked = 0;
  verifications = 0;
  bytesLost = 0;
  readonly lost: Array<VerifyResult["lost"][number] & { round: number }> = [];
  readonly unreadable: Array<VerifyResult["unreadable"][number] & { round: number }> = [];
  readonly duplicates: Array<{ round: number; sandbox: string; containers: number }> = [];
  /** Duplicates seen by the 1 s sampler between checkpoints. */
  sampledDuplicates: Array<{ phase: string; sandbox: string; containers: number; samples: number }> = [];
  readonly torn: Array<{ round: number; path: string; size: number }> = [];
  readonly writeFailures: Array<WriteFailure & { round: number; after: string }> = [];
  leaks: string[] = [];
  bytesWritten = 0;
  writes = 0;
  retried: Record<string, number> = {};
  /** Uploads sent, by form (path-first, file-first, raw, e2b). */
  uploads: Record<string, number> = {};

  fault(r: FaultRecord, round: number): void {
    const f = this.faults.get(r.kind) ?? { injected: 0, effective: 0 };
    f.injected++;
    if (r.effective) f.effective++;
    this.faults.set(r.kind, f);
    this.records.push({ ...r, round });
    if (r.torn) this.torn.push({ round, ...r.torn });
  }

  verified(v: VerifyResult, round: number): void {
    this.verifications++;
    this.filesChecked += v.files;
    this.bytesChecked += v.bytes;
    this.bytesLost += v.bytesLost;
    for (const l of v.lost) this.lost.push({ ...l, round });
    for (const u of v.unreadable) this.unreadable.push({ ...u, round });
  }

  /** Files the final check could not read: their bytes cannot be shown to be intact. */
  unverifiable: VerifyResult["unreadable"] = [];

  /**
   * Data lost or torn, a sandbox with two running containers, something left
   * behind, or a file that could not be read back at the end. Failed writes and
   * reads in between are reported but are not loss: the file's old version stays
   * acceptable and the next check reads it again.
   */
  get failed(): boolean {
    return (
      this.lost.length +
        this.duplicates.length +
        this.sampledDuplicates.length +
        this.torn.length +
        this.leaks.length +
        this.unverifiable.length >
      0
    );
  }

  print(meta: { seed: number; seconds: number }): void {
    const l: string[] = [];
    l.push(`soak: seed ${meta.seed}, ${this.rounds} rounds in ${meta.seconds.toFixed(0)} s`);
    l.push(
      `faults: ${[...this.faults].map(([k, f]) => `${k} ${f.injected}${f.effective < f.injected ? ` (${f.injected - f.effective} without effect)` : ""}`).join(", ")}`,
    );
    l.push(
      `writes: ${this.writes} (${(this.bytesWritten / 1024 / 1024).toFixed(1)} MiB); ${this.verifications} verifications, ${this.filesChecked} file reads, ${(this.bytesChecked / 1024 / 1024).toFixed(1)} MiB compared`,
    );
    l.push(
      `uploads by form: ${
        Object.entries(this.uploads)
          .map(([k, n]) => `${k} ${n}`)
          .join(", ") || "none"
      }`,
    );
    l.push(`bytes lost: ${this.bytesLost} (${this.lost.length} files)`);
    for (const x of this.lost.slice(0, 20))
      l.push(
        `  round ${x.round}: ${x.volume} ${x.path} via ${x.route}: got ${x.got.slice(0, 12)}, expected ${x.expected.map((e) => e.slice(0, 12)).join("|")}`,
      );
    l.push(`torn uploads: ${this.torn.length}`);
    for (const t of this.torn) l.push(`  round ${t.round}: ${t.path} visible with ${t.size} bytes`);
    l.push(`reads that failed for 90 s (retried at the next check): ${this.unreadable.length}`);
    for (const u of this.unreadable.slice(0, 20)) l.push(`  round ${u.round}: ${u.volume} ${u.path} via ${u.route}: ${u.status}`);
    l.push(`duplicates at checkpoints (sandboxes with > 1 running container): ${this.duplicates.length}`);
    for (const d of this.duplicates) l.push(`  round ${d.round}: ${d.sandbox} had ${d.containers}`);
    l.push(`duplicates seen by the 1 s sampler: ${this.sampledDuplicates.length}`);
    for (const d of this.sampledDuplicates) l.push(`  ${d.phase}: ${d.sandbox} had ${d.containers} running (${d.samples} samples)`);
    l.push(`failed writes (not loss: the old version stays acceptable): ${this.writeFailures.length}`);
    for (const f of this.writeFailures.slice(0, 20))
      l.push(`  round ${f.round} after ${f.after}: ${f.volume} ${f.path} via ${f.route}: ${f.status} ${f.body}`);
    l.push(`unreadable at the final check: ${this.unverifiable.length}`);
    for (const u of this.unverifiable) l.push(`  ${u.volume} ${u.path} via ${u.route}: ${u.status}`);
    l.push(`leaks after deleting everything: ${this.leaks.length ? this.leaks.join(", ") : "none"}`);
    l.push(
      `retried answers: ${
        Object.entries(this.retried)
          .map(([k, n]) => `${k}×${n}`)
          .join(" ") || "none"
      }`,
    );
    const odd = this.records.filter((r) => r.note);
    if (odd.length) {
      l.push("fault notes:");
      for (const r of odd.slice(0, 40)) l.push(`  round ${r.round} ${r.kind} (${r.target}): ${r.note}`);
    }
    l.push(this.failed ? "soak: FAILED" : "soak: no loss, no torn uploads, no duplicates, no leaks");
    console.log(l.join("\n"));
  }

  write(file: string, meta: Record<string, unknown>): void {
    const { faults, ...rest } = this;
    writeFileSync(file, `${JSON.stringify({ ...meta, ...rest, faults: Object.fromEntries(faults) }, null, 2)}\n`);
  }
}
