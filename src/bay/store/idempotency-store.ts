/**
 * Idempotency records. A key is claimed by one atomic INSERT … ON CONFLICT so
 * that two requests racing on the same key (even from two Bay processes on one
 * database) cannot both proceed. Each claim carries a random token: only its
 * holder may complete or release it, so a request whose stale claim was taken
 * over cannot touch the new holder's record. The resource a claim created is
 * recorded in the same transaction that creates it, so a retry after a crash
 * answers with that resource instead of creating a second one.
 */
import { idempotencyClaimLost } from "../errors.ts";
import type { Database } from "./database.ts";
import { num, optNum, optStr, str } from "./rows.ts";

export interface StoredResponse {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** What a claim holder needs to complete, release or attach its key. */
export interface Claim {
  owner: string;
  key: string;
  token: string;
  /** A resource an earlier, crashed holder of this key created (taken over): answer with it. */
  resourceId: string | null;
}

export type ClaimResult =
  | { kind: "claimed"; claim: Claim }
  | { kind: "replay"; fingerprint: string; response: StoredResponse }
  | { kind: "in_flight"; fingerprint: string };

/** An SQL condition and its positional arguments, appended to a statement's WHERE with AND. */
export interface Fence {
  sql: string;
  args: string[];
}

/** The one spelling of "this claim is still held", whatever its placeholders. */
const claimHeld = (owner: string, key: string, token: string) =>
  `EXISTS (SELECT 1 FROM idempotency_keys WHERE owner = ${owner} AND key = ${key} AND token = ${token} AND state = 'in_flight')`;

export class IdempotencyStore {
  constructor(
    private readonly db: Database,
    /** An in-flight claim older than this is considered abandoned (its process died). */
    private readonly inFlightTimeoutMs = 60_000,
  ) {}

  /**
   * Claims (owner, key) for a new request, or reports what holds it. An expired
   * record, or an abandoned in-flight one, is taken over by the claim.
   */
  async claim(owner: string, key: string, fingerprint: string, now: number, ttlMs: number, attempt = 0): Promise<ClaimResult> {
    const token = crypto.randomUUID();
    // A finished record is taken over once its TTL has passed; an in-flight one
    // only when it is stale. Its own expires_at must not count: with a TTL
    // shorter than the request, a duplicate would otherwise run in parallel. A
    // stale claim of the same request keeps the resource it created.
    const rs = await this.db.execute({
      sql: `INSERT INTO idempotency_keys (owner, key, fingerprint, state, token, created_at, expires_at)
            VALUES (:owner, :key, :fp, 'in_flight', :token, :now, :exp)
            ON CONFLICT (owner, key) DO UPDATE SET
              fingerprint = excluded.fingerprint, state = 'in_flight', token = excluded.token, created_at = excluded.created_at,
              expires_at = excluded.expires_at, response_status = NULL, response_body = NULL, response_headers = NULL,
              resource_id = CASE WHEN idempotency_keys.state = 'in_flight' AND idempotency_keys.fingerprint = excluded.fingerprint
                                 THEN idempotency_keys.resource_id ELSE NULL END
            WHERE (idempotency_keys.state = 'done' AND idempotency_keys.expires_at <= :now)
               OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.created_at <= :stale)
            RETURNING resource_id`,
      args: { owner, key, fp: fingerprint, token, now, exp: now + ttlMs, stale: now - this.inFlightTimeoutMs },
    });
    if (rs.rows.length === 1) return { kind: "claimed", claim: { owner, key, token, resourceId: optStr(rs.rows[0]!, "resource_id") } };
    const existing = await this.db.execute({
      sql: "SELECT * FROM idempotency_keys WHERE owner = ? AND key = ?",
      args: [owner, key],
    });
    const row = existing.rows[0];
    // Vanished between the two statements (released by a failing first attempt): try again.
    if (!row) {
      if (attempt >= 5) return { kind: "in_flight", fingerprint };
      return this.claim(owner, key, fingerprint, now, ttlMs, attempt + 1);
    }
    const fp = str(row, "fingerprint");
    if (str(row, "state") !== "done" || optNum(row, "response_status") === null) return { kind: "in_flight", fingerprint: fp };
    return {
      kind: "replay",
      fingerprint: fp,
      response: {
        status: num(row, "response_status"),
        body: optStr(row, "response_body") ?? "",
        headers: JSON.parse(optStr(row, "response_headers") ?? "{}") as Record<string, string>,
      },
    };
  }

  /**
   * A condition for the statements that create a claim's resource: the claim is
   * still this request's. A transaction Bay gave up on (its answer timed out, so
   * the claim was released or taken over by a retry) may still be applied by a
   * libSQL server later: fenced, it then creates nothing, instead of a second
   * sandbox or workspace beside the retry's. Positional arguments, to append.
   */
  heldFence(claim: Claim): Fence {
    return { sql: claimHeld("?", "?", "?"), args: [claim.owner, claim.key, claim.token] };
  }

  /** heldFence with named arguments (`:fence_owner`, `:fence_key`, `:fence_token`), for a statement that names its own. */
  heldFenceNamed(claim: Claim): { sql: string; args: Record<string, string> } {
    return {
      sql: claimHeld(":fence_owner", ":fence_key", ":fence_token"),
      args: { fence_owner: claim.owner, fence_key: claim.key, fence_token: claim.token },
    };
  }

  /** Whether the claim is still this request's (not released, not taken over by a retry). */
  async held(claim: Claim): Promise<boolean> {
    const rs = await this.db.execute({ sql: `SELECT ${claimHeld("?", "?", "?")} AS held`, args: [claim.owner, claim.key, claim.token] });
    return Number(rs.rows[0]?.held) === 1;
  }

  /**
   * For a fenced create that wrote nothing: throws idempotencyClaimLost when it ran
   * under a claim that is no longer this request's (the fence, not a quota, stopped
   * it). Without a claim, or with one still held, returns and the caller looks on.
   */
  async ensureHeld(claim?: Claim): Promise<void> {
    if (claim && !(await this.held(claim))) throw idempotencyClaimLost();
  }

  /**
   * Statement, for the transaction that creates the resource: records its id on
   * the claim (only while this holder still holds it).
   */
  attachStatement(claim: Claim, resourceId: string) {
    return {
      sql: "UPDATE idempotency_keys SET resource_id = ? WHERE owner = ? AND key = ? AND token = ? AND state = 'in_flight'",
      args: [resourceId, claim.owner, claim.key, claim.token],
    };
  }

  /**
   * Statement, for a warm-pool claim's transaction: records the sandbox that
   * claim took (the row marked with `claimToken`) on this key's claim. A claim
   * that took nothing leaves the record as it is.
   */
  attachClaimedStatement(claim: Claim, claimToken: string) {
    return {
      sql: `UPDATE idempotency_keys SET resource_id = (SELECT id FROM sandboxes WHERE claim_token = :ct)
            WHERE owner = :owner AND key = :key AND token = :token AND state = 'in_flight'
              AND EXISTS (SELECT 1 FROM sandboxes WHERE claim_token = :ct)`,
      args: { ct: claimToken, owner: claim.owner, key: claim.key, token: claim.token },
    };
  }

  /** Stores the final response of a claimed key; false when the claim is no longer this holder's. */
  async complete(claim: Claim, response: StoredResponse): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?, response_headers = ?
            WHERE owner = ? AND key = ? AND token = ? AND state = 'in_flight'`,
      args: [response.status, response.body, JSON.stringify(response.headers), claim.owner, claim.key, claim.token],
    });
    return rs.rowsAffected === 1;
  }

  /**
   * Gives up a claim whose request failed in a way a retry should not replay (5xx), if it
   * is still this holder's. A claim that recorded a resource is not dropped: the resource
   * exists (its transaction committed, and only the answer failed, a database that timed
   * out, say), so the claim is left at once takeable, and the retry answers with it.
   */
  async release(claim: Claim): Promise<void> {
    const mine = "owner = ? AND key = ? AND token = ? AND state = 'in_flight'";
    const args = [claim.owner, claim.key, claim.token];
    await this.db.batch(
      [
        [`DELETE FROM idempotency_keys WHERE ${mine} AND resource_id IS NULL`, args],
        [`UPDATE idempotency_keys SET created_at = 0 WHERE ${mine}`, args],
      ],
      "write",
    );
  }

  /** Deletes expired records; returns how many. */
  async purgeExpired(now: number): Promise<number> {
    // An in-flight claim may belong to a request still running: only one abandoned
    // (older than the in-flight timeout) goes with the expired records.
    const rs = await this.db.execute({
      sql: "DELETE FROM idempotency_keys WHERE expires_at <= ? AND (state = 'done' OR created_at <= ?)",
      args: [now, now - this.inFlightTimeoutMs],
    });
    return rs.rowsAffected;
  }
}
