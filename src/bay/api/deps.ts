/** Everything the HTTP layer needs, built once by the composition root. */
import type { BayConfig } from "../config.ts";
import type { ApiKeyService } from "../domain/auth/api-keys.ts";
import type { JwtVerifier } from "../domain/auth/jwt-verifier.ts";
import type { CapabilityRouter } from "../domain/capability-router.ts";
import type { HealthService } from "../domain/health-service.ts";
import type { ProfileRegistry } from "../domain/profiles.ts";
import type { SandboxContexts } from "../domain/sandbox-contexts.ts";
import type { SandboxExec } from "../domain/sandbox-exec.ts";
import type { SandboxFiles } from "../domain/sandbox-files.ts";
import type { SandboxManager } from "../domain/sandbox-manager.ts";
import type { SandboxProcesses } from "../domain/sandbox-processes.ts";
import type { SandboxTerminal } from "../domain/sandbox-terminal.ts";
import type { SandboxWatch } from "../domain/sandbox-watch.ts";
import type { WorkspaceFiles } from "../domain/workspace-files.ts";
import type { WorkspaceManager } from "../domain/workspace-manager.ts";
import type { Logger } from "../logger.ts";
import type { BayMetrics } from "../observability/bay-metrics.ts";
import type { Stores } from "../store/index.ts";
import type { SandboxMetrics } from "../domain/sandbox-metrics.ts";
import type { SandboxPorts } from "../domain/sandbox-ports.ts";
import type { UploadSpool } from "./upload-spool.ts";

export interface AppDeps {
  config: BayConfig;
  stores: Stores;
  profiles: ProfileRegistry;
  sandboxes: SandboxManager;
  sandboxExec: SandboxExec;
  sandboxContexts: SandboxContexts;
  sandboxFiles: SandboxFiles;
  sandboxProcesses: SandboxProcesses;
  sandboxTerminal: SandboxTerminal;
  sandboxWatch: SandboxWatch;
  sandboxPorts: SandboxPorts;
  sandboxMetrics: SandboxMetrics;
  uploadSpool: UploadSpool;
  workspaces: WorkspaceManager;
  workspaceFiles: WorkspaceFiles;
  router: CapabilityRouter;
  health: HealthService;
  apiKeys: ApiKeyService;
  jwt: JwtVerifier | null;
  logger: Logger;
  metrics: BayMetrics;
}
