/** The memory engine's two checks of what reaches it: a Ship's credentials line, and reachability before file calls. */
import { MIN_SECRET_LENGTH, type ShipCredentials } from "../../../protocol/ship/index.ts";
import type { VolumeFiles } from "../driver.ts";

/** Ship's reading of its credentials line: the credentials, or why it refuses them. */
export function parseCredentials(line: string | undefined): ShipCredentials | string {
  if (line === undefined) return "no session credentials on stdin (expected one JSON line)";
  let c: Partial<ShipCredentials> | null;
  try {
    c = JSON.parse(line);
  } catch {
    return "session credentials are not JSON";
  }
  if (typeof c?.session_id !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(c.session_id))
    return "session credentials lack a valid session_id";
  if (typeof c.secret !== "string" || c.secret.length < MIN_SECRET_LENGTH || c.secret.length > 512) {
    return `session secret must be ${MIN_SECRET_LENGTH}-512 characters`;
  }
  return { session_id: c.session_id, secret: c.secret };
}

/** VolumeFiles that first asks the engine to be reachable. */
export function checkedFiles(files: VolumeFiles, check: () => void): VolumeFiles {
  return {
    stat: async (v, p) => (check(), files.stat(v, p)),
    read: async (v, p) => (check(), files.read(v, p)),
    write: async (v, p, b) => (check(), files.write(v, p, b)),
    list: async (v, p, o) => (check(), files.list(v, p, o)),
    remove: async (v, p, o) => (check(), files.remove(v, p, o)),
    usage: async (v) => (check(), files.usage(v)),
  };
}
