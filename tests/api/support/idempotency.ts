/**
 * What the idempotency tests share (tests/api/idempotency*.test.ts): requests
 * whose body is exactly the text the test gives, and counts of what they made.
 */
import type { TestBay } from "../../support/harness.ts";

export const idem = (key: string, extra: Record<string, string> = {}) => ({ "idempotency-key": key, ...extra });

export async function countSandboxes(t: TestBay, owner?: string): Promise<number> {
  const rs = await t.bay.deps.stores.db.execute({
    sql: "SELECT COUNT(*) AS n FROM sandboxes WHERE (? IS NULL OR owner = ?)",
    args: [owner ?? null, owner ?? null],
  });
  return Number(rs.rows[0]!.n);
}

/** Sends a raw JSON text body, so key order and whitespace are exactly what the test says. */
export function post(t: TestBay, path: string, body: string, headers: Record<string, string>, owner = "alice") {
  return t.bay.app.request(path, { method: "POST", body, headers: { "content-type": "application/json", "x-owner": owner, ...headers } });
}

/** Replaces a manager method until the returned restore function is called. */
export function wrap<T extends object, K extends keyof T>(obj: T, key: K, make: (original: T[K]) => T[K]): () => void {
  const original = obj[key];
  obj[key] = make(typeof original === "function" ? (original.bind(obj) as T[K]) : original);
  return () => {
    obj[key] = original;
  };
}
