/**
 * Paths as E2B clients write them, and the workspace paths Bay's rules take.
 * E2B's user home `/home/user` is Bay's `/workspace`; both absolute forms and
 * paths relative to the home are accepted. Anything else (`/tmp`, `/etc`) is
 * outside what Bay's file routes reach and is refused with the path rule's
 * error, before any container starts. Commands still see the whole container.
 */
import { BayError } from "../errors.ts";
import { normalizeWorkspacePath } from "../domain/paths.ts";

export const E2B_HOME = "/home/user";
const ROOTS = [E2B_HOME, "/workspace"];

/** The workspace-relative path ("." for the root) of an E2B path; invalid_path otherwise. */
export function toWorkspacePath(raw: string): string {
  let p = raw === "" || raw === "~" ? "." : raw.startsWith("~/") ? raw.slice(2) : raw;
  if (p.startsWith("/")) {
    const root = ROOTS.find((r) => p === r || p.startsWith(`${r}/`));
    if (!root) {
      throw new BayError("invalid_path", `${raw} is outside the sandbox's files: Bay's file calls reach ${E2B_HOME} (/workspace) only`, {
        details: { path: raw },
      });
    }
    p = p.slice(root.length).replace(/^\/+/, "");
    if (p === "") p = ".";
  }
  p = p.replace(/\/+$/, "");
  return normalizeWorkspacePath(p === "" ? "." : p);
}

/** The absolute path an E2B client sees for a workspace-relative one. */
export function toE2bPath(workspacePath: string): string {
  return workspacePath === "." || workspacePath === "" ? E2B_HOME : `${E2B_HOME}/${workspacePath}`;
}

/** The directory a command or PTY starts in: the home unless given; one outside it is refused like a file path. */
export function commandCwd(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  return toWorkspacePath(raw);
}
