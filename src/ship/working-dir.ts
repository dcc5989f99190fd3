import { stat } from "node:fs/promises";
import { ShipError } from "./errors.ts";
import { pathError, resolveExisting } from "./paths.ts";

/** A checked working directory: workspace-relative as given, and absolute (with the workspace's real root). */
export interface WorkingDir {
  relative: string;
  absolute: string;
  root: string;
}

/**
 * Resolves a workspace-relative directory (default the root) that must exist and be a
 * directory; `what` names it in the refusal of one that is not.
 */
export async function workingDir(workspace: string, cwd: string | undefined, what = "cwd"): Promise<WorkingDir> {
  const target = await resolveExisting(workspace, cwd ?? ".");
  // The directory may go between the check and this stat (another process removed it).
  const info = await stat(target.absolute).catch((err) => {
    throw pathError(err, target.relative);
  });
  if (!info.isDirectory()) {
    throw new ShipError("validation_error", `${what} is not a directory: ${target.relative}`, { details: { path: target.relative } });
  }
  return { relative: target.relative, absolute: target.absolute, root: target.root };
}
