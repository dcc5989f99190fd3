/**
 * The JS kernel's side of the line protocol with Ship (../protocol.ts): events
 * out on the protocol channel, each a whole line even after an interrupt cut a
 * write short; requests in, a line at a time; and the kernel's own log.
 */
import { writeSync } from "node:fs";
import type { KernelEvent } from "../protocol.ts";
import type { KernelFds } from "./fds.ts";
import { kernelApply, kernelExitNow, kernelStringify, readerRead, stringIndexOf, stringSlice, textDecode } from "./intrinsics.ts";

export class KernelChannel {
  private protocolDirty = false;

  constructor(private readonly fds: Pick<KernelFds, "requests" | "protocol" | "log">) {}

  /** Writes one event line, retrying a full pipe; a broken channel ends the process. */
  send(event: KernelEvent): void {
    // A write cut short (an interrupt landing mid-loop) leaves half a line: start afresh.
    const line = `${this.protocolDirty ? "\n" : ""}${kernelStringify(event)}\n`;
    const buf = Buffer.from(line, "utf8");
    let offset = 0;
    this.protocolDirty = true;
    while (offset < buf.length) {
      try {
        offset += writeSync(this.fds.protocol, buf, offset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EINTR") {
          Bun.sleepSync(1);
          continue;
        }
        this.log(`protocol channel broken (${code ?? err}); exiting`);
        kernelExitNow(1);
      }
    }
    this.protocolDirty = false;
  }

  /** A line in the kernel's log (Ship's log of the context). */
  log(message: string): void {
    try {
      writeSync(this.fds.log, `[js-kernel] ${message}\n`);
    } catch {
      // Nowhere left to complain to.
    }
  }

  /** Calls `onLine` with each request line until Ship closes the request pipe. */
  async readLines(onLine: (line: string) => void): Promise<void> {
    // Through the methods of before any cell: one that replaces them must not make the kernel deaf.
    const decoder = new TextDecoder();
    let pending = "";
    const reader = Bun.file(this.fds.requests).stream().getReader();
    for (;;) {
      const { done, value } = await kernelApply(readerRead, reader, []);
      if (done) break;
      pending += kernelApply(textDecode, decoder, [value, { stream: true }]);
      let nl: number;
      while ((nl = kernelApply(stringIndexOf, pending, ["\n"])) >= 0) {
        const line: string = kernelApply(stringSlice, pending, [0, nl]);
        pending = kernelApply(stringSlice, pending, [nl + 1]);
        onLine(line);
      }
    }
  }
}
