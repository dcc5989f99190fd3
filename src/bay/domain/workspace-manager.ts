/**
 * Workspace lifecycle: external workspaces are created and deleted here;
 * managed ones come and go with their sandbox. Volumes are created lazily,
 * the first time something mounts them.
 */
import type { Driver } from "../drivers/driver.ts";
import { BayError, notFound } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Claim } from "../store/idempotency-store.ts";
import type { Stores } from "../store/index.ts";
import { decodeCursor, encodeCursor } from "../store/rows.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import { newId } from "./ids.ts";
import { workspaceQuotaReached } from "./quotas.ts";
import { removeVolumeQuietly } from "./sandbox-manager.ts";

export interface WorkspaceManagerDeps {
  stores: Stores;
  driver: Driver;
  logger: Logger;
  defaultSizeLimitMb: number;
  /** The most size_limit_mb a client may ask for. */
  maxSizeLimitMb: number;
  /** Live workspaces per owner, managed and external together. */
  maxWorkspacesPerOwner: number;
  now?: () => number;
}

export class WorkspaceManager {
  private readonly now: () => number;
  constructor(private readonly deps: WorkspaceManagerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Creates an external workspace (not deleted with any sandbox). Under an
   * Idempotency-Key `claim`, as for sandboxes: the id is recorded with the insert,
   * and a claim that already names a workspace answers with it.
   */
  async create(owner: string, input: { sizeLimitMb?: number | undefined }, claim?: Claim): Promise<WorkspaceRecord> {
    const { maxSizeLimitMb, maxWorkspacesPerOwner, stores } = this.deps;
    if (claim?.resourceId) {
      const earlier = await stores.workspaces.findLive(owner, claim.resourceId);
      if (earlier) return earlier;
    }
    if (input.sizeLimitMb !== undefined && input.sizeLimitMb > maxSizeLimitMb) {
      throw new BayError("validation_error", `size_limit_mb may be at most ${maxSizeLimitMb}`, {
        details: { issues: [{ path: "json.size_limit_mb", message: `at most ${maxSizeLimitMb}` }] },
      });
    }
    const now = this.now();
    const id = newId("ws", now);
    const row = {
      id,
      owner,
      managed: false,
      volumeName: id,
      sizeLimitMb: input.sizeLimitMb ?? this.deps.defaultSizeLimitMb,
      createdAt: now,
    };
    // Under an Idempotency-Key, nothing is created unless the key's claim is still this request's.
    const fence = claim ? stores.idempotency.heldFence(claim) : undefined;
    const statements = [stores.workspaces.insertWithinQuotaStatement(row, { maxWorkspaces: maxWorkspacesPerOwner }, fence)];
    if (claim) statements.push(stores.idempotency.attachStatement(claim, id));
    const [inserted] = await stores.db.batch(statements, "write");
    if (inserted?.rowsAffected !== 1) {
      await stores.idempotency.ensureHeld(claim);
      throw workspaceQuotaReached(maxWorkspacesPerOwner);
    }
    this.deps.logger.info("workspace created", { owner, workspace_id: id });
    return this.get(owner, id);
  }

  /** A live workspace of this owner; 404 otherwise. */
  async get(owner: string, id: string): Promise<WorkspaceRecord> {
    const ws = await this.deps.stores.workspaces.findLive(owner, id);
    if (!ws) throw notFound("workspace", id);
    return ws;
  }

  async list(owner: string, q: { limit: number; cursor?: string | undefined }) {
    let beforeId: string | undefined;
    if (q.cursor) {
      const id = decodeCursor(q.cursor);
      if (!id) throw new BayError("validation_error", "invalid cursor", { details: { field: "cursor" } });
      beforeId = id;
    }
    const page = await this.deps.stores.workspaces.list({ owner, limit: q.limit, beforeId });
    const last = page.items[page.items.length - 1];
    return { items: page.items, nextCursor: page.more && last ? encodeCursor(last.id) : null };
  }

  /** Deletes a workspace and its volume; 409 while a live sandbox uses it. */
  async delete(owner: string, id: string): Promise<void> {
    const ws = await this.get(owner, id);
    // The check and the tombstone are one statement: a sandbox being created on
    // this workspace at the same moment either wins (409 here) or finds it gone (404 there).
    if (!(await this.deps.stores.workspaces.markDeletedIfUnused(id, this.now()))) {
      const current = await this.get(owner, id);
      throw new BayError("conflict", `workspace ${id} is in use by sandbox ${current.sandboxId}; delete the sandbox first`, {
        details: { workspace_id: id, sandbox_id: current.sandboxId },
      });
    }
    await removeVolumeQuietly(this.deps.driver, ws.volumeName, this.deps.logger);
  }
}
