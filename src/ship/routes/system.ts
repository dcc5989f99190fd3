import { Hono } from "hono";
import { LANGUAGES } from "../contexts/kernels.ts";
import type { SupervisedKernel } from "../kernel/supervised-kernel.ts";
import { CAPABILITIES, SHIP_API_VERSION, shipOperations as ops } from "../../protocol/ship/index.ts";
import { SHIP_VERSION } from "../version.ts";

/** GET /health and GET /meta. */
export function systemRoutes(deps: { kernel: SupervisedKernel; workspace: string; sessionId: string }) {
  return new Hono()
    .get(ops.getHealth.honoPath, (c) => c.json({ status: "healthy" as const, kernel: deps.kernel.state }))
    .get(ops.getMeta.honoPath, (c) =>
      c.json({
        runtime: {
          name: "ship",
          version: SHIP_VERSION,
          api_version: SHIP_API_VERSION,
          build: {
            inputs_hash: process.env.SHIP_BUILD_HASH ?? "dev",
            bun: Bun.version,
            platform: `${process.platform}-${process.arch}`,
          },
        },
        session: { id: deps.sessionId },
        workspace: { mount_path: deps.workspace },
        capabilities: CAPABILITIES,
        languages: [...LANGUAGES],
      }),
    );
}
