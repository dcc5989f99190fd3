/**
 * Builds Bay's runtime images (bay-ship, bay-ship-data) with the docker CLI,
 * skipping any image whose `bay.ship.inputs-hash` label already matches its inputs.
 * Used by `bun run image:build` (scripts/build-images.ts) and reusable by Bay's
 * start script through `ensureImages()`.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { shipImages } from "../src/bay/config.ts";

/** The two image targets of src/ship/Dockerfile. */
export type ShipImageTarget = "ship" | "data";

/** Image tag per Dockerfile target (`BAY_SHIP_TAG` picks another tag than latest, e.g. one per work tree). */
export const SHIP_IMAGES: Record<ShipImageTarget, string> = shipImages(process.env.BAY_SHIP_TAG || undefined);

/** Options of ensureImages. */
export interface EnsureImagesOptions {
  /** Which images to build (default both; data needs nothing from ship). */
  only?: ShipImageTarget[];
  /** Rebuild even when the label matches. */
  force?: boolean;
  /** Base image; default from $BASE_IMAGE, else debian:bookworm-slim, else bay-base:bookworm. */
  baseImage?: string;
  /** Repository root (default: the parent of this scripts/ folder). */
  repoRoot?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** What ensureImages did per image. */
export interface EnsureImagesResult {
  baseImage: string;
  images: Array<{ target: ShipImageTarget; tag: string; hash: string; built: boolean }>;
}

const LABEL = "bay.ship.inputs-hash";
const DEFAULT_ROOT = join(import.meta.dir, "..");
const LOCAL_BASE = "bay-base:bookworm";

async function run(
  cmd: string[],
  opts: { stream?: boolean; timeoutMs?: number; stdin?: "inherit" | "ignore" } = {},
): Promise<{ code: number; stdout: string }> {
  const proc = Bun.spawn(cmd, {
    stdin: opts.stdin ?? "ignore",
    stdout: opts.stream ? "inherit" : "pipe",
    stderr: opts.stream ? "inherit" : "pipe",
    timeout: opts.timeoutMs,
  });
  const stdout = opts.stream ? "" : await new Response(proc.stdout as ReadableStream).text();
  return { code: await proc.exited, stdout: stdout.trim() };
}

async function mustRun(cmd: string[], what: string): Promise<void> {
  const { code } = await run(cmd, { stream: true });
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${cmd.join(" ")}`);
}

/** The image id of `ref`, or null when it is not present locally. */
async function imageId(ref: string): Promise<string | null> {
  const { code, stdout } = await run(["docker", "image", "inspect", "-f", "{{.Id}}", ref]);
  return code === 0 ? stdout : null;
}

async function imageLabel(ref: string): Promise<string | null> {
  const { code, stdout } = await run(["docker", "image", "inspect", "-f", `{{ index .Config.Labels "${LABEL}" }}`, ref]);
  return code === 0 && stdout && stdout !== "<no value>" ? stdout : null;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * Hash of everything an image is made from: every file under src/ship (sources,
 * driver script, Dockerfile), this script, the Bun version compiling the binary,
 * the base image id and the target.
 */
export async function imageInputsHash(target: ShipImageTarget, baseImageId: string, repoRoot: string = DEFAULT_ROOT): Promise<string> {
  const hash = createHash("sha256");
  const shipDir = join(repoRoot, "src/ship");
  for (const file of [...(await listFiles(shipDir)), join(repoRoot, "scripts/ship-images.ts")]) {
    hash
      .update(relative(repoRoot, file))
      .update("\0")
      .update(await readFile(file))
      .update("\0");
  }
  hash.update(`bun=${Bun.version}\0base=${baseImageId}\0target=${target}`);
  return hash.digest("hex").slice(0, 32);
}

/** Makes bay-base:bookworm with debootstrap (no registry needed, Debian's archive is). */
async function debootstrapBase(log: (line: string) => void): Promise<void> {
  if ((await run(["sh", "-c", "command -v debootstrap"])).code !== 0) {
    log("installing debootstrap with apt-get");
    await mustRun(["apt-get", "update"], "apt-get update");
    await mustRun(["apt-get", "install", "-y", "debootstrap"], "apt-get install debootstrap");
  }
  const dir = await mkdtemp(join(tmpdir(), "bay-rootfs-"));
  try {
    log(`debootstrap bookworm into ${dir} (about a minute)`);
    await mustRun(["debootstrap", "--variant=minbase", "bookworm", dir, "http://deb.debian.org/debian"], "debootstrap");
    log(`importing ${LOCAL_BASE}`);
    await mustRun(["sh", "-c", `tar -C '${dir}' -c . | docker import - ${LOCAL_BASE}`], "docker import");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Picks the base image per the documented order, creating bay-base:bookworm as a last resort. */
export async function resolveBaseImage(log: (line: string) => void, wanted?: string): Promise<string> {
  const explicit = wanted ?? process.env.BASE_IMAGE;
  if (explicit) return explicit;
  if (await imageId("debian:bookworm-slim")) return "debian:bookworm-slim";
  if (!(await imageId(LOCAL_BASE))) {
    log("trying docker pull debian:bookworm-slim");
    const pulled = await run(["docker", "pull", "debian:bookworm-slim"], { timeoutMs: 30_000 });
    if (pulled.code === 0) return "debian:bookworm-slim";
    log("no registry reachable; building a local base image");
    await debootstrapBase(log);
  }
  return LOCAL_BASE;
}

/** Compiles Ship into a single executable at `outfile`. */
export async function compileShip(outfile: string, repoRoot: string = DEFAULT_ROOT): Promise<void> {
  await mustRun(["bun", "build", "--compile", "--minify", join(repoRoot, "src/ship/main.ts"), "--outfile", outfile], "bun build --compile");
}

/** Builds whatever is missing or stale of bay-ship / bay-ship-data. */
export async function ensureImages(opts: EnsureImagesOptions = {}): Promise<EnsureImagesResult> {
  const log = opts.log ?? ((line: string) => console.error(`[image:build] ${line}`));
  const repoRoot = opts.repoRoot ?? DEFAULT_ROOT;
  const targets = opts.only ?? (["ship", "data"] as ShipImageTarget[]);
  const baseImage = await resolveBaseImage(log, opts.baseImage);
  const baseId = await imageId(baseImage);
  if (!baseId) throw new Error(`base image ${baseImage} is not present locally`);
  log(`base image: ${baseImage}`);

  const plan: EnsureImagesResult["images"] = [];
  for (const target of targets) {
    const tag = SHIP_IMAGES[target];
    const hash = await imageInputsHash(target, baseId, repoRoot);
    const current = await imageLabel(tag);
    const built = opts.force === true || current !== hash;
    log(built ? `${tag}: needs a build (${current ? "inputs changed" : "missing"})` : `${tag}: up to date (${hash})`);
    plan.push({ target, tag, hash, built });
  }
  if (!plan.some((p) => p.built)) return { baseImage, images: plan };

  const context = await mkdtemp(join(tmpdir(), "bay-ship-ctx-"));
  try {
    log("compiling ship (bun build --compile)");
    await compileShip(join(context, "ship"), repoRoot);
    await copyFile(join(repoRoot, "src/ship/Dockerfile"), join(context, "Dockerfile"));
    for (const item of plan.filter((p) => p.built)) {
      log(`building ${item.tag} (target ${item.target})`);
      await mustRun(
        [
          "docker",
          "build",
          "--target",
          item.target,
          "-t",
          item.tag,
          "--build-arg",
          `BASE_IMAGE=${baseImage}`,
          "--build-arg",
          `SHIP_INPUTS_HASH=${item.hash}`,
          context,
        ],
        `docker build ${item.tag}`,
      );
    }
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return { baseImage, images: plan };
}
