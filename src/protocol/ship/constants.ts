/**
 * The few constants Bay and Ship must agree on beyond the generated protocol. Kept
 * apart from the generated schemas so that a side that only sends requests (Bay)
 * loads no zod schema it never runs; index.ts re-exports them with the rest.
 */

/** `details.reason` of a write to or delete of the workspace root, from Bay and from Ship alike. */
export const WORKSPACE_ROOT_REASON = "is the workspace root";

/**
 * `details.reason` of a delete of a path that ends in `/`, which must name a directory
 * (as `rm -r file/` says "Not a directory"), when its entry is not one: a file, or a
 * symlink (never followed). Bay passes the trailing slash on to Ship.
 */
export const NOT_A_DIRECTORY_REASON = "is not a directory (the path ends with /)";

/** Whether a path names a directory by its form alone: its last segment is empty, `.` or `..` (`dir/`, `dir/.`, `a/dir/..`). */
export function namesDirectory(path: string): boolean {
  const last = path.slice(path.lastIndexOf("/") + 1);
  return last === "" || last === "." || last === "..";
}

/**
 * `details.reason` of a delete whose path ends in a `.` or `..` segment (`dir/.`,
 * `t/file/..`), from Bay and from Ship alike. Normalised, such a path names another
 * entry than the one it spells (`t/file/..` is `t`), so it is refused before anything
 * is deleted, in the words of `rm -r`, which refuses it too.
 */
export const DOT_SEGMENT_REASON = "ends in . or .. (refusing to remove '.' or '..' directory, as rm does)";

/** Whether a path's last segment, trailing slashes aside, is `.` or `..` (`dir/.`, `a/dir/..`, `dir/./`): see DOT_SEGMENT_REASON. */
export function endsInDotSegment(path: string): boolean {
  const trimmed = path.replace(/\/+$/, "");
  const last = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  return last === "." || last === "..";
}

/** The API version Bay requires of a Ship (`/meta` runtime.api_version). */
export const SHIP_API_VERSION = "v1";

/** What Bay hands a new container on its standard input, one JSON line. */
export interface ShipCredentials {
  session_id: string;
  secret: string;
}

/** Fewest characters a session secret has (base64url of 32 random bytes is 43). */
export const MIN_SECRET_LENGTH = 32;

/** The environment variable that tells Ship to read its credentials from stdin. */
export const CREDENTIALS_ENV = "SHIP_CREDENTIALS";

/**
 * After a timeout or a client gone, Ship interrupts the running cell and waits for its
 * answer: a kernel that has not acknowledged the interrupt within the first of these is
 * taken to ignore it and is replaced; one that did gets the second to answer (its result
 * carries all the cell's output, which at a raised output cap and on a loaded machine
 * takes many seconds to build and send). Bay's exec deadline covers both.
 */
export const KERNEL_INTERRUPT_ACK_MS = 10_000;
export const KERNEL_INTERRUPT_ANSWER_MS = 120_000;

/** Commands longer than this go to bash as a script file, not an argument (Linux caps one at 128 KiB). */
export const LONG_COMMAND_BYTES = 64 * 1024;

/**
 * The head limit of Bun's own HTTP parser on both hops (Bay's server and Ship's),
 * which answers a head past it with a bare 431 of its own. It sits above Bay's
 * highest server.max_header_bytes (1 MiB, answered in the error model) plus the
 * few headers Bay adds on its way to a Ship; no more, since a parser holds what it
 * has read of each unfinished head.
 */
export const TRANSPORT_MAX_HEADER_BYTES = 1024 * 1024 + 64 * 1024;

/** Ship's mark on the answer of a server in the sandbox (`/ports/…`), its value the server's status; Ship's own answers never carry it. */
export const UPSTREAM_HEADER = "x-ship-upstream";

/**
 * On a WebSocket request for a server in the sandbox: the subprotocols Bay's
 * client offered, comma-separated, for Ship to offer the server (Bay's own
 * WebSocket to Ship offers none).
 */
export const SUBPROTOCOLS_HEADER = "x-ship-subprotocols";

/**
 * `details.reason` of a path the runtime's user may not read, enter or change (code in
 * the sandbox ran chmod on it, or made a directory read-only), from Ship and from the
 * workspace routes alike.
 */
export const PERMISSION_DENIED_REASON = "permission denied";

/** Operations per capability, as a Ship's /meta advertises them (and the memory driver's fake Ship). */
export const CAPABILITIES = {
  filesystem: { operations: ["read_file", "write_file", "delete", "list_dir", "upload", "download", "watch"] },
  shell: {
    operations: [
      "exec",
      "background",
      "list_processes",
      "get_process",
      "kill_process",
      "process_output",
      "process_stdin",
      "process_signal",
      "terminal",
    ],
  },
  python: { operations: ["exec"] },
} as const;
