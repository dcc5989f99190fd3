/**
 * Ship's session credentials. Bay writes them on the container's standard input
 * at start (one JSON line), so the secret is in no environment variable, file or
 * image layer; Ship reads them once, before it serves, and keeps them in memory.
 */
import { readSync } from "node:fs";
import { MIN_SECRET_LENGTH, type ShipCredentials } from "../protocol/ship/index.ts";

const MAX_LINE = 4096;

/** Checks the shape of credentials; throws with a message that never contains the secret. */
export function parseCredentials(line: string): ShipCredentials {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error("session credentials are not JSON");
  }
  const c = value as Partial<ShipCredentials> | null;
  if (typeof c?.session_id !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(c.session_id)) {
    throw new Error("session credentials lack a valid session_id");
  }
  if (typeof c.secret !== "string" || c.secret.length < MIN_SECRET_LENGTH || c.secret.length > 512) {
    throw new Error(`session secret must be ${MIN_SECRET_LENGTH}-512 characters`);
  }
  return { session_id: c.session_id, secret: c.secret };
}

/** Reads one line of credentials from fd 0 (blocking: nothing is served before it). */
export function readCredentialsFromStdin(fd = 0): ShipCredentials {
  const buf = Buffer.alloc(MAX_LINE);
  let length = 0;
  for (;;) {
    const n = readSync(fd, buf, length, MAX_LINE - length, null);
    if (n === 0) break;
    length += n;
    if (buf.subarray(0, length).includes(0x0a) || length >= MAX_LINE) break;
  }
  const text = buf.subarray(0, length).toString("utf8");
  buf.fill(0);
  const nl = text.indexOf("\n");
  if (nl < 0) throw new Error("no session credentials on stdin (expected one JSON line)");
  return parseCredentials(text.slice(0, nl));
}
