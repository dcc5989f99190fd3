/**
 * The compiled dist/bay for the binary tests: rebuilt with `bun run build` when
 * any input is newer than it, then run from directories that are not the
 * repository (no node_modules, no src in reach).
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "../../..");
export const BINARY = join(ROOT, "dist/bay");

/** Newest mtime under `path` (a file or a directory tree). */
function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(path, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/** dist/bay is reusable when it is newer than src/, the build script and the lockfile. */
function binaryIsFresh(): boolean {
  let built: number;
  try {
    built = statSync(BINARY).mtimeMs;
  } catch {
    return false;
  }
  // openapi/: the spec is embedded as its YAML text.
  const inputs = ["src", "openapi", "scripts/build.ts", "package.json", "bun.lock"].map((p) => join(ROOT, p));
  return inputs.every((p) => {
    try {
      return newestMtime(p) < built;
    } catch {
      return true; // an input that does not exist cannot be newer
    }
  });
}

/** Builds dist/bay unless it is fresh. */
export function ensureBinary(): void {
  if (binaryIsFresh()) return;
  const build = Bun.spawnSync(["bun", "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`bun run build failed:\n${build.stdout}\n${build.stderr}`);
}

/** Runs dist/bay with `args` in `cwd` and a minimal environment plus `env`; collects its output. */
export async function runBinary(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([BINARY, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}
