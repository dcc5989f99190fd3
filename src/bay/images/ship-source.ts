/**
 * Where Ship's image inputs come from: a source checkout (src/ship, compiled
 * with the running Bun) or the copy embedded in a compiled `dist/bay`. Both
 * describe themselves by the same digest, so an image built from either is
 * recognised as up to date by the other.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { EMBEDDED_SHIP } from "./embedded.ts";

/**
 * Bumped whenever the way images are built changes without src/ship changing
 * (build args, labels, context layout), so existing images count as stale.
 */
export const RECIPE_VERSION = "3";

export interface ShipSource {
  origin: "repository" | "embedded";
  /** Digest of every file under src/ship and src/protocol, and the recipe version. */
  sourcesDigest: string;
  /** The Bun that compiles (or compiled) the Ship executable. */
  bunVersion: string;
  dockerfile(): Promise<string>;
  /** Writes the Ship executable to `dest` (mode 0755). */
  writeShip(dest: string): Promise<void>;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** What Ship's executable is compiled from: its own sources and the protocol it shares with Bay. */
export const SHIP_SOURCE_DIRS = ["src/ship", "src/protocol"];

/** Digest of SHIP_SOURCE_DIRS under `repoRoot` (paths and contents) and RECIPE_VERSION. */
export async function shipSourcesDigest(repoRoot: string): Promise<string> {
  const hash = createHash("sha256");
  const files = (await Promise.all(SHIP_SOURCE_DIRS.map((d) => listFiles(join(repoRoot, d))))).flat();
  for (const file of files) {
    hash
      .update(relative(repoRoot, file))
      .update("\0")
      .update(await readFile(file))
      .update("\0");
  }
  return hash.update(`recipe=${RECIPE_VERSION}`).digest("hex");
}

/**
 * A compiled Bun executable reads `bunfig.toml` (with its `preload` scripts) and
 * `.env` from its working directory before its own code runs. Ship's is
 * /workspace, which code in the sandbox writes and keeps across sessions: with
 * these on, a `bunfig.toml` left there ran a script inside Ship before it read
 * its session secret. Never autoload anything (tsconfig.json and package.json are
 * off by default in Bun 1.4; said explicitly so a change of default cannot reopen this).
 */
export const NO_AUTOLOAD = { autoloadBunfig: false, autoloadDotenv: false, autoloadTsconfig: false, autoloadPackageJson: false } as const;
/** The same, as `bun build --compile` flags (`autoloadBunfig: false` is `--no-compile-autoload-bunfig`). */
export const SHIP_COMPILE_FLAGS: readonly string[] = Object.keys(NO_AUTOLOAD).map(
  (key) => `--no-compile-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
);

/** Ship from a source checkout: compiled on demand with `bun build --compile`. */
export async function repositoryShipSource(repoRoot: string): Promise<ShipSource> {
  if (!existsSync(join(repoRoot, "src/ship/main.ts"))) throw new Error(`${repoRoot} is not a Bay checkout (no src/ship/main.ts)`);
  return {
    origin: "repository",
    sourcesDigest: await shipSourcesDigest(repoRoot),
    bunVersion: Bun.version,
    dockerfile: () => readFile(join(repoRoot, "src/ship/Dockerfile"), "utf8"),
    async writeShip(dest) {
      // SHIP_COMPILE_FLAGS: Ship runs in /workspace, which the sandbox writes.
      const proc = Bun.spawn(
        ["bun", "build", "--compile", ...SHIP_COMPILE_FLAGS, "--minify", join(repoRoot, "src/ship/main.ts"), "--outfile", dest],
        {
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      if (code !== 0) throw new Error(`bun build --compile of Ship failed (exit ${code}):\n${out}${err}`);
    },
  };
}

/** Ship as embedded in this binary, or null when running from source. */
export function embeddedShipSource(): ShipSource | null {
  const e = EMBEDDED_SHIP;
  if (!e) return null;
  return {
    origin: "embedded",
    sourcesDigest: e.sourcesDigest,
    bunVersion: e.bunVersion,
    dockerfile: async () => e.dockerfile,
    async writeShip(dest) {
      await writeFile(dest, Bun.gunzipSync(await Bun.file(e.shipGzPath).bytes()), { mode: 0o755 });
    },
  };
}

/** The repository two levels above this file, when it is one (never inside a compiled binary). */
export const REPO_ROOT = join(import.meta.dir, "../../..");

/** The embedded copy in a compiled binary, else the checkout this file lives in. */
export async function defaultShipSource(): Promise<ShipSource> {
  return embeddedShipSource() ?? repositoryShipSource(REPO_ROOT);
}
