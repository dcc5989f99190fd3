import { stat } from "node:fs/promises";
import { ShipError } from "./errors.ts";
import { resolveExisting } from "./paths.ts";

/** A checked working directory: workspace-relative as given, and absolute. */
export interface WorkingDir {
  relative: string;
  absolute: string;
}

/** Resolves a workspace-relative directory (default the root) that must exist and be a directory. */
export async function workingDir(workspace: string, cwd: string | undefined): Promise<WorkingDir> {
  const target = await resolveExisting(workspace, cwd ?? ".");
  if (!(await stat(target.absolute)).isDirectory()) {
    throw new ShipError("validation_error", `cwd is not a directory: ${target.relative}`, { details: { path: target.relative } });
  }
  return { relative: target.relative, absolute: target.absolute };
}
