/**
 * Idempotency records. A key is claimed by one atomic INSERT … ON CONFLICT so
 * that two requests racing on the same key (even from two Bay processes on one
 * database) cannot both proceed.
 */
import type { Database } from "./database.ts";
import { num, optNum, optStr, str } from "./rows.ts";

export interface StoredResponse {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export type ClaimResult =
  | { kind: "claimed" }
  | { kind: "replay"; fingerprint: string; response: StoredResponse }
  | { kind: "in_flight"; fingerprint: string };

export class IdempotencyStore {
  constructor(
    private readonly db: Database,
    /** An in-flight claim older than this is considered abandoned (its process died). */
    private readonly inFlightTimeoutMs = 10 * 60_000,
  ) {}

  /**
   * Claims (owner, key) for a new request, or reports what holds it. An expired
   * record, or an abandoned in-flight one, is taken over by the claim.
   */
  async claim(owner: string, key: string, fingerprint: string, now: number, ttlMs: number, attempt = 0): Promise<ClaimResult> {
    // A finished record is taken over once its TTL has passed; an in-flight one
    // only when it is stale. Its own expires_at must not count: with a TTL
    // shorter than the request, a duplicate would otherwise run in parallel.
    const rs = await this.db.execute({
      sql: `INSERT INTO idempotency_keys (owner, key, fingerprint, state, created_at, expires_at)
            VALUES (:owner, :key, :fp, 'in_flight', :now, :exp)
            ON CONFLICT (owner, key) DO UPDATE SET
              fingerprint = excluded.fingerprint, state = 'in_flight', created_at = excluded.created_at,
              expires_at = excluded.expires_at, response_status = NULL, response_body = NULL, response_headers = NULL
            WHERE (idempotency_keys.state = 'done' AND idempotency_keys.expires_at <= :now)
               OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.created_at <= :stale)`,
      args: { owner, key, fp: fingerprint, now, exp: now + ttlMs, stale: now - this.inFlightTimeoutMs },
    });
    if (rs.rowsAffected === 1) return { kind: "claimed" };
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

  /** Stores the final response of a claimed key. */
  async complete(owner: string, key: string, response: StoredResponse): Promise<void> {
    await this.db.execute({
      sql: `UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?, response_headers = ?
            WHERE owner = ? AND key = ? AND state = 'in_flight'`,
      args: [response.status, response.body, JSON.stringify(response.headers), owner, key],
    });
  }

  /** Drops a claim whose request failed in a way a retry should not replay (5xx). */
  async release(owner: string, key: string): Promise<void> {
    await this.db.execute({
      sql: "DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND state = 'in_flight'",
      args: [owner, key],
    });
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
