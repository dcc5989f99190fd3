/**
 * Sandbox lifecycle rules: create (a warm-pool claim, else lazy: no compute),
 * read, list, keepalive, stop, delete and TTL extension. Compute is delegated
 * to SessionManager, the warm pool to PoolManager.
 */
import type { Driver } from "../drivers/driver.ts";
import { BayError, notFound } from "../errors.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { Claim } from "../store/idempotency-store.ts";
import type { Stores } from "../store/index.ts";
import { decodeCursor, encodeCursor } from "../store/rows.ts";
import type { SandboxRecord, SandboxStatus } from "../store/sandbox-store.ts";
import { newId } from "./ids.ts";
import type { ProfileRegistry } from "./profiles.ts";
import { sandboxQuotaReached, workspaceQuotaReached } from "./quotas.ts";
import { expiredError } from "./lifecycle.ts";
import type { PoolManager } from "./pool-manager.ts";
import type { RouteCache } from "./route-cache.ts";
import type { SessionManager } from "./session-manager.ts";

export interface CreateSandboxInput {
  profile: string;
  workspaceId?: string | undefined;
  /** Seconds; null or 0 = never expires. */
  ttl?: number | null | undefined;
}

export interface SandboxManagerDeps {
  stores: Stores;
  sessions: SessionManager;
  driver: Driver;
  profiles: ProfileRegistry;
  logger: Logger;
  limits: { maxSandboxesPerOwner: number; maxWorkspacesPerOwner: number; workspaceSizeLimitMb: number };
  /** The warm pool; absent or size 0: every create is lazy. */
  pool?: Pick<PoolManager, "claim">;
  /** Forgotten for a sandbox when it is deleted or its TTL changes. */
  routes?: Pick<RouteCache, "forget">;
  now?: () => number;
}

export class SandboxManager {
  private readonly now: () => number;
  constructor(private readonly deps: SandboxManagerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Creates a sandbox. Without a `workspaceId`, a warm member of the profile's
   * pool is claimed when there is one (answered `ready`); otherwise the sandbox
   * and its managed workspace are created in one transaction (lazy: `idle`). An
   * external workspace always takes the lazy path. Under an Idempotency-Key
   * `claim`, the sandbox's id is recorded on it in the transaction that creates
   * or claims it, and a claim that already names a sandbox (its first holder
   * crashed after creating it) answers with that sandbox.
   */
  async create(owner: string, input: CreateSandboxInput, claim?: Claim): Promise<SandboxRecord> {
    const { stores, profiles, limits } = this.deps;
    const profile = profiles.require(input.profile);
    if (claim?.resourceId) {
      const earlier = await stores.sandboxes.findLive(owner, claim.resourceId, this.now());
      if (earlier) return earlier;
    }
    if (!input.workspaceId && this.deps.pool) {
      const pooled = await this.deps.pool.claim(owner, profile, input.ttl ?? 0, claim);
      if (pooled) {
        this.deps.logger.info("sandbox created", { owner, sandbox_id: pooled, profile: profile.id, warm_pool: true });
        return this.get(owner, pooled);
      }
    }
    const max = limits.maxSandboxesPerOwner;
    if ((await stores.sandboxes.countLive(owner)) >= max) throw sandboxQuotaReached(max);
    const now = this.now();
    const id = newId("sandbox", now);
    const statements = [];
    // Under an Idempotency-Key, nothing is created unless the key's claim is still this request's.
    const fence = claim ? stores.idempotency.heldFence(claim) : undefined;
    let workspaceId: string;
    if (input.workspaceId) {
      const ws = await stores.workspaces.findLive(owner, input.workspaceId);
      if (!ws) throw notFound("workspace", input.workspaceId);
      if (ws.managed || ws.sandboxId) {
        throw new BayError("conflict", `workspace ${ws.id} is already used by sandbox ${ws.sandboxId ?? "(managed)"}`, {
          details: { workspace_id: ws.id, sandbox_id: ws.sandboxId },
        });
      }
      workspaceId = ws.id;
    } else {
      workspaceId = newId("ws", now);
      statements.push(
        stores.workspaces.insertWithinQuotaStatement(
          { id: workspaceId, owner, managed: true, volumeName: workspaceId, sizeLimitMb: limits.workspaceSizeLimitMb, createdAt: now },
          { maxWorkspaces: limits.maxWorkspacesPerOwner, maxLiveSandboxes: max },
          fence,
        ),
      );
    }
    const ttl = input.ttl ?? 0;
    const row = { id, owner, profileId: profile.id, workspaceId, createdAt: now, expiresAt: ttl > 0 ? now + ttl * 1000 : null };
    // Quota, and for an external workspace its liveness, are conditions of the
    // inserts themselves: nothing can slip between the checks above and the write.
    statements.push(
      input.workspaceId
        ? stores.sandboxes.insertOnExternalWorkspaceStatement(row, max, fence)
        : stores.sandboxes.insertWithinQuotaStatement(row, max, fence),
    );
    if (claim) statements.push(stores.idempotency.attachStatement(claim, id));
    try {
      const results = await stores.db.batch(statements, "write");
      if (results[claim ? results.length - 2 : results.length - 1]?.rowsAffected !== 1) {
        await stores.idempotency.ensureHeld(claim);
        if ((await stores.sandboxes.countLive(owner)) >= max) throw sandboxQuotaReached(max);
        if (!input.workspaceId && (await stores.workspaces.countLive(owner)) >= limits.maxWorkspacesPerOwner) {
          throw workspaceQuotaReached(limits.maxWorkspacesPerOwner);
        }
        throw notFound("workspace", workspaceId); // deleted since the check above
      }
    } catch (e) {
      if (/UNIQUE constraint failed: sandboxes\.workspace_id/.test(errorMessage(e))) {
        throw new BayError("conflict", `workspace ${workspaceId} is already used by another sandbox`, {
          details: { workspace_id: workspaceId },
        });
      }
      throw e;
    }
    this.deps.logger.info("sandbox created", { owner, sandbox_id: id, profile: profile.id, workspace_id: workspaceId });
    return this.get(owner, id);
  }

  /** A live sandbox of this owner; 404 for unknown, deleted or foreign ids. */
  async get(owner: string, id: string): Promise<SandboxRecord> {
    const sb = await this.deps.stores.sandboxes.findLive(owner, id, this.now());
    if (!sb) throw notFound("sandbox", id);
    return sb;
  }

  async list(owner: string, q: { limit: number; cursor?: string | undefined; status?: SandboxStatus | undefined }) {
    let beforeId: string | undefined;
    if (q.cursor) {
      const id = decodeCursor(q.cursor);
      if (!id) throw new BayError("validation_error", "invalid cursor", { details: { field: "cursor" } });
      beforeId = id;
    }
    const page = await this.deps.stores.sandboxes.list({ owner, limit: q.limit, beforeId, status: q.status }, this.now());
    const last = page.items[page.items.length - 1];
    return { items: page.items, nextCursor: page.more && last ? encodeCursor(last.id) : null };
  }

  /** Pushes the idle deadline of a running session; never starts compute. */
  async keepalive(owner: string, id: string): Promise<SandboxRecord> {
    const sb = await this.get(owner, id);
    if (sb.status === "expired") throw expiredError(id);
    if (sb.currentSessionId) {
      const profile = this.deps.profiles.forSandbox(sb.profileId);
      await this.deps.stores.sandboxes.extendIdleDeadline(id, this.now() + profile.idle_timeout * 1000);
    }
    return this.get(owner, id);
  }

  /** Destroys compute, keeps the sandbox and its workspace. Idempotent. */
  async stop(owner: string, id: string): Promise<SandboxRecord> {
    await this.get(owner, id);
    await this.deps.sessions.stop(id);
    return this.get(owner, id);
  }

  /** Extends the TTL of a sandbox that has one; 409 when it has expired or never expires (spec: extendSandboxTtl). */
  async extendTtl(owner: string, id: string, extendBySeconds: number): Promise<SandboxRecord> {
    const sb = await this.get(owner, id);
    if (sb.status === "expired") throw expiredError(id);
    if (sb.expiresAt === null) {
      throw new BayError("conflict", `sandbox ${id} has no TTL; there is nothing to extend`, { details: { sandbox_id: id } });
    }
    await this.deps.stores.sandboxes.setExpiresAt(id, Math.max(sb.expiresAt, this.now()) + extendBySeconds * 1000);
    this.deps.routes?.forget(id);
    return this.get(owner, id);
  }

  /**
   * Moves a sandbox's deadline to `expiresAt`, earlier or later (E2B's
   * set_timeout and connect); the caller has checked the sandbox. This
   * process's route cache forgets it, so a shortened deadline holds at once.
   */
  async setDeadline(id: string, expiresAt: number): Promise<void> {
    await this.deps.stores.sandboxes.setExpiresAt(id, expiresAt);
    this.deps.routes?.forget(id);
  }

  /** Tombstones the sandbox, destroys compute, and removes a managed workspace with its volume. */
  async delete(owner: string, id: string): Promise<void> {
    const sb = await this.get(owner, id);
    await this.destroy(sb);
  }

  /**
   * Deletion shared with the reaper. The tombstone goes first so no new start
   * can claim the sandbox; then the session is ended, so a start still in
   * flight fails its markReady and removes its own container.
   */
  async destroy(sb: SandboxRecord): Promise<void> {
    const { stores, sessions, driver, logger } = this.deps;
    // One transaction ends the session, tombstones a managed workspace and the
    // sandbox; what follows only removes Docker objects, and whatever it cannot
    // remove now, reconcile removes later (nothing live owns it any more).
    this.deps.routes?.forget(sb.id);
    if (!(await stores.sandboxes.tombstone(sb.id, this.now()))) return;
    await sessions.removeSandboxContainers(sb.id);
    const ws = await stores.workspaces.get(sb.workspaceId);
    if (ws?.managed) await removeVolumeQuietly(driver, ws.volumeName, logger);
    logger.info("sandbox deleted", { owner: sb.owner, sandbox_id: sb.id });
  }
}

/** Removes a volume; failures are logged and left to reconcile (the row is already tombstoned). */
export async function removeVolumeQuietly(driver: Driver, name: string, logger: Logger): Promise<void> {
  try {
    await driver.removeVolume(name);
  } catch (e) {
    logger.warn("volume removal deferred to reconcile", { volume: name, error: errorMessage(e) });
  }
}
