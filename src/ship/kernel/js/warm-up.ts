/**
 * The JS kernel's warm-up: the whole cell path run once on a throw-away cell while the
 * kernel waits for its first request, so the first real cell does not pay for the
 * parser's, the transpiler's and the vm's first use.
 */
import vm from "node:vm";
import { cellValue } from "./cell.ts";
import type { Guard } from "./guard.ts";
import { kernelStringify } from "./intrinsics.ts";
import { bundleOf } from "./output.ts";
import { thenOf } from "./promises.ts";
import { transformCell } from "./transform.ts";

export function warmUp(guard: Guard, transpile: (ts: string) => string, log: (line: string) => void): void {
  try {
    transpile("let warm: number = 1");
    const script = new vm.Script(transformCell("1 + 1", transpile).source, { filename: "bay-kernel-warmup" });
    const ran = guard.run(() => script.runInThisContext() as Promise<unknown>);
    if (ran.kind === "ok") void thenOf(cellValue(ran.value), ({ value }) => kernelStringify(bundleOf(value)));
  } catch (err) {
    log(`warm-up failed: ${(err as Error).message}`);
  }
}
