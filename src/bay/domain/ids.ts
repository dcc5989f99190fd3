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

/** Increments a base32 string by one (carrying), for ids minted in the same millisecond. */
function increment(s: string): string {
  const chars = s.split("");
  for (let i = chars.length - 1; i >= 0; i--) {
    const v = ALPHABET.indexOf(chars[i]!);
    if (v < 31) {
      chars[i] = ALPHABET[v + 1]!;
      return chars.join("");
    }
    chars[i] = ALPHABET[0]!;
  }
  return chars.join("");
}

let lastTime = "";
let lastRandom = "";

/**
 * A new sortable id such as `sandbox-01jd2…`. Within one process ids are
 * strictly increasing: in the same millisecond the random part is incremented
 * rather than redrawn (as ULID's monotonic mode does), so creation order is
 * also list order.
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  const time = encodeTime(now);
  if (time === lastTime) lastRandom = increment(lastRandom);
  else {
    lastTime = time;
    lastRandom = randomPart(14);
  }
  return `${prefix}-${time}${lastRandom}`;
}
