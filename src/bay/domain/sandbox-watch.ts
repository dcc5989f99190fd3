/** File watch on a sandbox: an event stream from its Ship, the path checked here before any container starts. */
import type { CallContext, CapabilityRouter } from "./capability-router.ts";
import { DEADLINES } from "../runtime/ship-client.ts";
import { normalizeWorkspacePath } from "./paths.ts";

export class SandboxWatch {
  constructor(private readonly router: CapabilityRouter) {}

  watch(ctx: CallContext, rawPath: string, recursive: boolean): Promise<Response> {
    const path = normalizeWorkspacePath(rawPath);
    return this.router.call(ctx, {
      capability: "filesystem",
      operation: "watch",
      coverMs: DEADLINES.stream,
      replayable: true,
      opens: true,
      run: (ship, s) => ship.watchFiles(s, path, recursive, ctx),
    });
  }
}
