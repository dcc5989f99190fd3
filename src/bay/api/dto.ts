/** Maps domain records to the API's response shapes (the generated types). */
import type { Profile, ProfileRegistry } from "../domain/profiles.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import type { Profile as ProfileDto, Sandbox, Workspace } from "./generated/index.ts";

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toSandboxDto(sb: SandboxRecord, profiles: ProfileRegistry): Sandbox {
  const profile = profiles.find(sb.profileId);
  return {
    id: sb.id,
    profile: sb.profileId,
    workspace_id: sb.workspaceId,
    status: sb.status,
    capabilities: profile ? [...profile.capabilities] : [],
    created_at: new Date(sb.createdAt).toISOString(),
    expires_at: iso(sb.expiresAt),
    idle_expires_at: sb.status === "expired" ? null : iso(sb.idleExpiresAt),
    last_error: sb.status === "failed" ? sb.lastError : null,
  };
}

export function toWorkspaceDto(ws: WorkspaceRecord): Workspace {
  return {
    id: ws.id,
    managed: ws.managed,
    sandbox_id: ws.sandboxId,
    size_limit_mb: ws.sizeLimitMb,
    created_at: new Date(ws.createdAt).toISOString(),
    last_accessed_at: iso(ws.lastAccessedAt),
  };
}

/**
 * A profile as clients see it: its network choice by kind only (an operator's
 * Docker network name stays inside), its runtime and whether the engine has it.
 */
export function toProfileDto(p: Profile, runtimeAvailable: boolean | null): ProfileDto {
  return {
    id: p.id,
    image: p.image,
    cpus: p.cpus,
    memory_mb: p.memory_mb,
    capabilities: [...p.capabilities],
    languages: [...p.languages],
    max_contexts: p.max_contexts,
    idle_timeout: p.idle_timeout,
    network: typeof p.network === "object" ? "docker_network" : p.network,
    runtime: p.runtime ?? null,
    runtime_available: runtimeAvailable,
    ...(p.description ? { description: p.description } : {}),
  };
}
