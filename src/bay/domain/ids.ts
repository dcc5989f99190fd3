/**
 * Resource ids: a prefix, then 10 characters of time and 14 of randomness in
 * Crockford base32 (lower case). Time first makes ids sort by creation, which
 * is what cursor pagination orders by.
 */
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

function encodeTime(ms: number): string {
  let out = "";
  let n = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[n % 32]! + out;
    n = Math.floor(n / 32);
  }
  return out;
}

function randomPart(len: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(len));
  let out = "";
  for (const b of bytes) out += ALPHABET[b % 32];
  return out;
}

export type IdPrefix = "sandbox" | "ws" | "sess" | "key";

/** A new sortable id such as `sandbox-01jd2…`. */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  return `${prefix}-${encodeTime(now)}${randomPart(14)}`;
}
