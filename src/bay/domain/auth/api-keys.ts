import { BayError } from "../../errors.ts";
/**
 * API keys: generated once, shown once, stored only as a SHA-256 hash.
 * Bootstrap keys from configuration are compared by hash too.
 */
import type { ApiKeyRecord, ApiKeyStore } from "../../store/api-key-store.ts";
import { newId } from "../ids.ts";
import { isApiKeyOwner, RESERVED_OWNER_PREFIXES } from "./owners.ts";

export const hashApiKey = (key: string): string => Bun.SHA256.hash(key, "hex") as string;

const TOUCH_INTERVAL_MS = 60_000;

export interface CreatedApiKey {
  record: ApiKeyRecord;
  /** The plain key: returned once, never stored. */
  key: string;
}

/** A stored key found valid, remembered for a short while. */
interface CachedKey {
  id: string;
  owner: string;
  lastUsedAt: number | null;
  until: number;
}

/** Keys remembered at most; past it the oldest half is dropped. */
const MAX_CACHED = 10_000;

export class ApiKeyService {
  private readonly bootstrap: Map<string, string>;
  private readonly cache = new Map<string, CachedKey>();
  /** Revocations made by this process: a store read begun before one is not cached (review s57). */
  private revocations = 0;

  /**
   * @param cacheMs how long a stored key found valid is trusted without asking
   *   the database again (0: every request asks). A key revoked by this process
   *   stops working at once; one revoked elsewhere (`bay keys revoke`, another
   *   replica) within `cacheMs`.
   * @param reservedPrefixes owner prefixes keys may not have (reservedOwnerPrefixes of the JWT prefix)
   */
  constructor(
    private readonly store: ApiKeyStore,
    bootstrapKeys: Array<{ key: string; owner: string }> = [],
    private readonly now: () => number = Date.now,
    private readonly cacheMs = 0,
    private readonly reservedPrefixes: readonly string[] = RESERVED_OWNER_PREFIXES,
  ) {
    this.bootstrap = new Map(bootstrapKeys.map((k) => [hashApiKey(k.key), k.owner]));
  }

  /**
   * `format` "e2b" makes the key in E2B's form (`e2b_` + 40 hex digits, 160 random
   * bits) for E2B SDKs that check it; it is an ordinary Bay key otherwise.
   */
  async create(owner: string, name: string | null = null, format: "bay" | "e2b" = "bay"): Promise<CreatedApiKey> {
    if (!isApiKeyOwner(owner, this.reservedPrefixes)) {
      throw new BayError(
        "validation_error",
        `an API key's owner is 1-128 characters of [A-Za-z0-9_.@:-], not starting with ${this.reservedPrefixes.join(" or ")}`,
      );
    }
    const key =
      format === "e2b"
        ? `e2b_${Buffer.from(crypto.getRandomValues(new Uint8Array(20))).toString("hex")}`
        : `bay_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")}`;
    const id = newId("key", this.now());
    await this.store.insert({ id, owner, name, keyHash: hashApiKey(key), prefix: key.slice(0, 10), now: this.now() });
    const record = await this.store.get(id);
    if (!record) throw new Error(`api key ${id} vanished after insert`);
    return { record, key };
  }

  list(owner?: string): Promise<ApiKeyRecord[]> {
    return this.store.list(owner);
  }

  async revoke(id: string): Promise<boolean> {
    this.forget(id);
    const revoked = await this.store.revoke(id, this.now());
    // A read that began before the revocation was written may have cached the key meanwhile (review s58).
    this.forget(id);
    return revoked;
  }

  /** Drops key `id` from the cache; a store read begun before now is not cached (verify). */
  private forget(id: string): void {
    this.revocations++;
    for (const [hash, k] of this.cache) if (k.id === id) this.cache.delete(hash);
  }

  /**
   * The owner of a key this process knows to be valid now (a bootstrap key, or one
   * read from the store within the cache's lifetime), without a promise; undefined
   * when only the store can tell (verify).
   */
  known(key: string): string | undefined {
    const hash = hashApiKey(key);
    const boot = this.bootstrap.get(hash);
    if (boot) return boot;
    const now = this.now();
    const rec = this.cache.get(hash);
    if (!rec || rec.until <= now) return undefined;
    this.touched(rec, now);
    return rec.owner;
  }

  /** The owner of a valid key, or null. */
  async verify(key: string): Promise<string | null> {
    const hash = hashApiKey(key);
    const boot = this.bootstrap.get(hash);
    if (boot) return boot;
    const now = this.now();
    let rec: CachedKey | undefined = this.cache.get(hash);
    if (!rec || rec.until <= now) {
      const revocations = this.revocations;
      const found = await this.store.findActiveByHash(hash);
      if (!found) {
        this.cache.delete(hash);
        return null;
      }
      rec = { id: found.id, owner: found.owner, lastUsedAt: found.lastUsedAt, until: now + this.cacheMs };
      // Read before a revocation here ended: this answer stands, but is not kept for the next.
      if (this.cacheMs > 0 && revocations === this.revocations) this.remember(hash, rec);
    }
    this.touched(rec, now);
    return rec.owner;
  }

  /**
   * The key was used at `now`. Best effort and throttled: last_used_at is informational,
   * and a write per request would contend with real writes on a shared database file.
   */
  private touched(rec: CachedKey, now: number): void {
    if (rec.lastUsedAt !== null && now - rec.lastUsedAt < TOUCH_INTERVAL_MS) return;
    rec.lastUsedAt = now;
    this.store.touch(rec.id, now).catch(() => {});
  }

  private remember(hash: string, rec: CachedKey): void {
    if (this.cache.size >= MAX_CACHED) {
      let drop = MAX_CACHED / 2;
      for (const k of this.cache.keys()) {
        if (drop-- <= 0) break;
        this.cache.delete(k);
      }
    }
    this.cache.set(hash, rec);
  }
}
