/**
 * Profiles: what a sandbox's runtime is (image, runtime, limits, languages, network,
 * warm pool), the schema config.ts validates each `profiles` entry with, and the
 * defaults Bay ships with.
 */
import { z } from "zod";

const capability = z.enum(["python", "shell", "filesystem"]);
/** Languages of code contexts. */
export const LANGUAGES = ["python", "javascript", "typescript"] as const;
const language = z.enum(LANGUAGES);

/** Docker's rule for network names. */
const DOCKER_NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * Why a profile may not name a network as its own: `host` would hand sandboxes the
 * host's network stack, `none` is spelled `network: none`, and Bay's managed
 * networks (`bay-egress-…`) only mean something with the rules Bay installs.
 */
/**
 * Container variables a profile may not set: Bay's own wiring of Ship, and what
 * would make Ship's runtime load code of its own choosing (Ship is a compiled Bun
 * executable: BUN_OPTIONS takes --preload, BUN_BE_BUN turns it into bun itself).
 */
const RESERVED_ENV = new Map<string, string>([
  ["SHIP_CREDENTIALS", "Bay hands Ship its credentials on stdin"],
  ["SHIP_SOCKET", "Bay sets it in connect_mode unix_socket"],
  ["SHIP_MAX_UPLOAD_BYTES", "it follows Bay's limits.max_upload_bytes"],
  ["SHIP_MAX_CONTEXTS", "it is the profile's max_contexts"],
  ["BUN_OPTIONS", "it would make Ship load code before its own (--preload)"],
  ["BUN_BE_BUN", "it would run the bun CLI instead of Ship"],
]);

function reservedNetwork(name: string): string | null {
  if (name === "host") return "it would give sandboxes the host's network stack";
  if (name === "none") return "write network: none";
  if (name.startsWith("bay-egress-")) return "the bay-egress- prefix is Bay's own; write network: egress or none";
  return null;
}

/**
 * Where a profile's sandboxes are attached.
 * * `egress` (default): a Bay-managed network with the public internet only.
 * * `none`: a Bay-managed network with no egress at all (Bay still reaches Ship).
 * * `{docker_network: name}`: an existing Docker network of the operator's; Bay installs no rules.
 */
const networkChoice = z.union(
  [z.enum(["egress", "none"]), z.strictObject({ docker_network: z.string().regex(DOCKER_NETWORK_NAME, "not a Docker network name") })],
  {
    error: (issue) =>
      typeof issue.input === "string"
        ? `expected "egress" or "none", got "${issue.input}"; to attach sandboxes to a Docker network of your own write network: {docker_network: ${issue.input}}`
        : `expected "egress", "none" or {docker_network: <name>}`,
  },
);
export type NetworkChoice = z.infer<typeof networkChoice>;

export const profileSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/),
    description: z.string().optional(),
    image: z.string().min(1),
    runtime_port: z.number().int().min(1).max(65535).default(8123),
    cpus: z.number().positive().max(64).default(1),
    memory_mb: z.number().int().min(64).max(262144).default(1024),
    pids_limit: z.number().int().min(16).max(65536).default(256),
    capabilities: z.array(capability).min(1).default(["python", "shell", "filesystem"]),
    /** Languages of its code contexts; default all of them (Python only with the python capability). */
    languages: z.array(language).optional(),
    /** Code contexts a sandbox may create (SHIP_MAX_CONTEXTS; the default context of each language does not count). */
    max_contexts: z.number().int().min(0).max(64).default(8),
    /** Seconds without a capability call before the session is reclaimed. */
    idle_timeout: z.number().int().min(1).default(1800),
    /** Container env. A value "${NAME}" takes host env NAME at start; never echoed back. */
    env: z.record(z.string(), z.string()).default({}),
    network: networkChoice.default("egress"),
    /** Deprecated: `true` is what `network: egress` (the default) does; `false` is refused with what to write instead. */
    block_private_egress: z.boolean().optional(),
    /** OCI runtime registered with the engine, e.g. runsc (gVisor); unset = the engine's default (runc). */
    runtime: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
      .optional(),
    read_only_rootfs: z.boolean().default(true),
    tmpfs_mb: z.number().int().min(1).max(65536).default(256),
    /**
     * Sessions of this profile kept started and warmed for no owner yet; a create
     * claims one and answers `ready`. Size 0 (the default): every create is lazy.
     */
    warm_pool: z
      .strictObject({
        size: z.number().int().min(0).max(1000).default(0),
        /** A member older than this is retired and replaced (no sandbox gets a runtime that waited longer). */
        max_age_seconds: z.number().int().min(10).default(3600),
      })
      .prefault({}),
  })
  .transform(({ block_private_egress, ...profile }, ctx) => {
    if (profile.languages?.includes("python") && !profile.capabilities.includes("python")) {
      ctx.addIssue({ code: "custom", path: ["languages"], message: "python needs the python capability" });
    }
    const own = typeof profile.network === "object" ? profile.network.docker_network : undefined;
    const reserved = own === undefined ? null : reservedNetwork(own);
    if (reserved) {
      ctx.addIssue({ code: "custom", path: ["network", "docker_network"], message: `"${own}" cannot be a profile's network: ${reserved}` });
    }
    for (const name of Object.keys(profile.env)) {
      if (RESERVED_ENV.has(name)) {
        ctx.addIssue({ code: "custom", path: ["env", name], message: `${name} cannot be set by a profile: ${RESERVED_ENV.get(name)}` });
      }
    }
    if (block_private_egress === false) {
      ctx.addIssue({
        code: "custom",
        path: ["block_private_egress"],
        message:
          "block_private_egress was replaced by network: sandboxes are isolated by default (network: egress); to run them on Docker's default bridge as before write network: {docker_network: bridge}, else delete the line",
      });
    } else if (block_private_egress === true && own !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["block_private_egress"],
        message: "block_private_egress only applies to Bay's managed networks; Bay installs no rules on a docker_network: delete the line",
      });
    }
    return {
      ...profile,
      languages: [...new Set(profile.languages ?? LANGUAGES.filter((l) => l !== "python" || profile.capabilities.includes("python")))],
    };
  });
export type ProfileConfig = z.infer<typeof profileSchema>;

/** Tag of Bay's own runtime images; `BAY_SHIP_TAG` picks another build (e.g. one per work tree). */
export const DEFAULT_SHIP_TAG = "latest";

/** The image names of Bay's two runtime images for a tag. */
export const shipImages = (tag = DEFAULT_SHIP_TAG) => ({ ship: `bay-ship:${tag}`, data: `bay-ship-data:${tag}` });

/** The profiles Bay ships with, on the runtime images of `tag`. */
export function defaultProfiles(tag = DEFAULT_SHIP_TAG): z.input<typeof profileSchema>[] {
  return [
    {
      id: "python-default",
      description: "Python 3 with IPython, shell and common CLI tools",
      image: shipImages(tag).ship,
      cpus: 1,
      memory_mb: 1024,
    },
    {
      id: "python-data",
      description: "python-default plus numpy, pandas and matplotlib",
      image: shipImages(tag).data,
      cpus: 2,
      memory_mb: 2048,
    },
    {
      id: "python-gvisor",
      description: "python-default under gVisor (runsc): a user-space kernel per sandbox, for untrusted multi-tenant code",
      image: shipImages(tag).ship,
      runtime: "runsc",
      cpus: 1,
      memory_mb: 1024,
    },
  ];
}
