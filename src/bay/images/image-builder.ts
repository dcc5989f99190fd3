/**
 * Builds Bay's runtime images (bay-ship, bay-ship-data) through the engine
 * API, skipping any image whose `bay.ship.inputs-hash` label already matches
 * its inputs: Ship's sources digest, the Bun that compiles Ship, the base
 * image id and the target. The engine's raw build output goes to `raw`
 * (a log file); `progress` gets one concise line per build step with its
 * time, or `cached`.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { pack } from "tar-stream";
import { followProgress, imageId, type ProgressEvent, resolveBaseImage } from "./base-image.ts";
import type { ShipSource } from "./ship-source.ts";

/** The two targets of src/ship/Dockerfile. */
export type ShipImageTarget = "ship" | "data";

export const INPUTS_LABEL = "bay.ship.inputs-hash";

const elapsed = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`);

export interface EnsureImagesOptions {
  docker: Docker;
  source: ShipSource;
  /** Tag per target (config.ts shipImages(tag)). */
  tags: Record<ShipImageTarget, string>;
  only?: ShipImageTarget[];
  /** Rebuild even when the label matches. */
  force?: boolean;
  /** Base image; default: see base-image.ts. */
  baseImage?: string;
  /** Concise progress lines. */
  progress?: (line: string) => void;
  /** The engine's raw output. */
  raw?: (text: string) => void;
  /** Heartbeat for a step still running (default 30 s). */
  heartbeatMs?: number;
}

export interface EnsureImagesResult {
  baseImage: string;
  images: Array<{ target: ShipImageTarget; tag: string; hash: string; built: boolean }>;
}

/** The inputs-hash label value of an image built from `source` on `baseImageId` for `target`. */
export function imageInputsHash(
  source: Pick<ShipSource, "sourcesDigest" | "bunVersion">,
  baseImageId: string,
  target: ShipImageTarget,
): string {
  return createHash("sha256")
    .update(`${source.sourcesDigest}\0bun=${source.bunVersion}\0base=${baseImageId}\0target=${target}`)
    .digest("hex")
    .slice(0, 32);
}

async function imageLabel(docker: Docker, ref: string): Promise<string | null> {
  try {
    return (await docker.getImage(ref).inspect()).Config?.Labels?.[INPUTS_LABEL] ?? null;
  } catch {
    return null;
  }
}

/**
 * A build context: the Dockerfile and one executable (mode 0755, named `name`), as a tar
 * stream packed here (dockerode's packer for a context directory is not part of Bay).
 */
export async function buildContext(dockerfile: string, executablePath: string, name = "ship"): Promise<NodeJS.ReadableStream> {
  const tar = pack();
  tar.entry({ name: "Dockerfile", mode: 0o644 }, dockerfile);
  const size = (await stat(executablePath)).size;
  const entry = tar.entry({ name, mode: 0o755, size }, (err) => (err ? tar.destroy(err) : tar.finalize()));
  createReadStream(executablePath).pipe(entry);
  return tar as unknown as NodeJS.ReadableStream;
}

/** Turns the engine's `Step N/M : …` stream into one line per finished step. */
class StepReporter {
  private current: { label: string; started: number; cached: boolean } | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  constructor(
    private readonly tag: string,
    private readonly progress: (line: string) => void,
    private readonly heartbeatMs: number,
  ) {}

  onText(text: string): void {
    for (const line of text.split("\n")) {
      const step = /^Step (\d+\/\d+) : (.*)$/.exec(line.trim());
      if (step) {
        this.finish();
        const instruction = step[2]!.replace(/\s+/g, " ");
        this.current = {
          label: `${step[1]} ${instruction.length > 72 ? `${instruction.slice(0, 71)}…` : instruction}`,
          started: performance.now(),
          cached: false,
        };
        this.timer = setInterval(() => {
          if (this.current)
            this.progress(`  ${this.tag} ${this.current.label}  running ${elapsed(performance.now() - this.current.started)}`);
        }, this.heartbeatMs);
      } else if (this.current && line.includes("Using cache")) this.current.cached = true;
    }
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.current) return;
    const c = this.current;
    this.current = null;
    this.progress(`  ${this.tag} ${c.label}  ${c.cached ? "cached" : elapsed(performance.now() - c.started)}`);
  }
}

/** Builds whatever is missing or stale of the requested images. */
export async function ensureShipImages(opts: EnsureImagesOptions): Promise<EnsureImagesResult> {
  const { docker, source } = opts;
  const progress = opts.progress ?? (() => {});
  const raw = opts.raw ?? (() => {});
  const targets = opts.only ?? (["ship", "data"] as ShipImageTarget[]);
  const baseImage = await resolveBaseImage(docker, progress, opts.baseImage);
  const baseId = await imageId(docker, baseImage);
  if (!baseId) throw new Error(`base image ${baseImage} is not present`);
  progress(`base image ${baseImage}`);

  const plan: EnsureImagesResult["images"] = [];
  for (const target of targets) {
    const tag = opts.tags[target];
    const hash = imageInputsHash(source, baseId, target);
    const current = await imageLabel(docker, tag);
    const built = opts.force === true || current !== hash;
    progress(built ? `${tag}: to build (${current ? "inputs changed" : "missing"})` : `${tag}: up to date`);
    plan.push({ target, tag, hash, built });
  }
  if (!plan.some((p) => p.built)) return { baseImage, images: plan };

  const dir = await mkdtemp(join(tmpdir(), "bay-ship-ctx-"));
  try {
    const started = performance.now();
    progress(source.origin === "embedded" ? "unpacking the embedded Ship executable" : "compiling Ship (bun build --compile)");
    const shipPath = join(dir, "ship");
    await source.writeShip(shipPath);
    progress(`Ship executable ready in ${elapsed(performance.now() - started)}`);
    const dockerfile = await source.dockerfile();
    for (const item of plan.filter((p) => p.built)) {
      const t0 = performance.now();
      progress(`building ${item.tag} (target ${item.target})`);
      raw(`\n===== ${new Date().toISOString()} building ${item.tag} (target ${item.target}, inputs ${item.hash}) =====\n`);
      const reporter = new StepReporter(item.tag, progress, opts.heartbeatMs ?? 30_000);
      try {
        const stream = await docker.buildImage(await buildContext(dockerfile, shipPath), {
          t: item.tag,
          target: item.target,
          buildargs: { BASE_IMAGE: baseImage, SHIP_INPUTS_HASH: item.hash },
          rm: true,
          forcerm: true,
        });
        await followProgress(docker, stream, (e: ProgressEvent) => {
          const text =
            e.stream ?? (e.status ? `${e.status}${e.progress ? ` ${e.progress}` : ""}\n` : "") + (e.error ? `ERROR: ${e.error}\n` : "");
          if (text) {
            raw(text);
            if (e.stream) reporter.onText(e.stream);
          }
        });
      } finally {
        reporter.finish();
      }
      if ((await imageLabel(docker, item.tag)) !== item.hash)
        throw new Error(`${item.tag} was built but does not carry the expected ${INPUTS_LABEL}`);
      progress(`built ${item.tag} in ${elapsed(performance.now() - t0)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { baseImage, images: plan };
}
