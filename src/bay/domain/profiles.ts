/** The read-only catalogue of runtime profiles, from configuration. */
import type { ProfileConfig } from "../config.ts";
import { BayError } from "../errors.ts";

export type Capability = "python" | "shell" | "filesystem";
export type Language = ProfileConfig["languages"][number];
export type Profile = ProfileConfig;

export class ProfileRegistry {
  private readonly byId: Map<string, Profile>;

  constructor(profiles: Profile[]) {
    this.byId = new Map(profiles.map((p) => [p.id, p]));
  }

  list(): Profile[] {
    return [...this.byId.values()];
  }

  /** The profile with this id, or undefined (no copy of the list: per-request paths use it). */
  find(id: string): Profile | undefined {
    return this.byId.get(id);
  }

  /** The profile, or a 400 validation_error naming the known ones. */
  require(id: string): Profile {
    const p = this.byId.get(id);
    if (!p) {
      throw new BayError("validation_error", `unknown profile: ${id}`, {
        details: { field: "profile", known: [...this.byId.keys()] },
      });
    }
    return p;
  }

  /** The profile of an existing sandbox; a vanished profile is a server-side problem. */
  forSandbox(id: string): Profile {
    const p = this.byId.get(id);
    if (!p) throw new BayError("internal_error", `profile ${id} is no longer configured`);
    return p;
  }

  /** Throws capability_not_supported when the profile lacks `language` (null: when it has no language at all). */
  assertLanguage(profile: Profile, language: Language | null): void {
    if (language === null ? profile.languages.length > 0 : profile.languages.includes(language)) return;
    const what = language === null ? "code contexts (it has no language)" : `${language} code contexts`;
    throw new BayError("capability_not_supported", `profile ${profile.id} does not support ${what}`, {
      // language undefined (no key in the JSON) when any language would do.
      details: { profile: profile.id, language: language ?? undefined, languages: profile.languages },
    });
  }

  /** Throws capability_not_supported when the profile lacks `cap`. */
  assertCapability(profile: Profile, cap: Capability): void {
    if (!profile.capabilities.includes(cap)) {
      throw new BayError("capability_not_supported", `profile ${profile.id} does not support ${cap}`, {
        details: { capability: cap, profile: profile.id, capabilities: profile.capabilities },
      });
    }
  }
}

/** Resolves `${NAME}` references in profile env from the host env (values never echoed back). */
export function resolveProfileEnv(env: Record<string, string>, hostEnv: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v);
    out[k] = m ? (hostEnv[m[1]!] ?? "") : v;
  }
  return out;
}

/** What runtime-availability needs of a driver (the optional `Driver.runtimes`). */
export interface RuntimeSource {
  runtimes?(): Promise<string[]>;
}

/**
 * Whether the engine offers each profile's OCI runtime. The engine is asked at
 * most once per `ttlMs` (and once at a time), so the unauthenticated `/health`
 * cannot be turned into a stream of engine calls; and a caller waits at most
 * `waitMs` for an answer (then: unknown), so `GET /v1/profiles` never hangs on a
 * stuck engine.
 */
export class RuntimeAvailability {
  private cached: { at: number; runtimes: string[] | null } | null = null;
  private pending: Promise<string[] | null> | null = null;
  private readonly ttlMs: number;
  private readonly failureTtlMs: number;
  private readonly waitMs: number;
  private readonly now: () => number;

  constructor(
    private readonly source: RuntimeSource,
    opts: { ttlMs?: number; failureTtlMs?: number; waitMs?: number; now?: () => number } = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 30_000;
    this.failureTtlMs = opts.failureTtlMs ?? 5_000;
    this.waitMs = opts.waitMs ?? 2_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Per profile id: true/false, or null when it cannot be told (engine not
   * answering, or a driver without the notion). A profile without a runtime uses
   * the engine's default, which every engine has.
   */
  async of(profiles: Profile[]): Promise<Map<string, boolean | null>> {
    const runtimes = profiles.some((p) => p.runtime) ? await this.runtimes() : [];
    return new Map(profiles.map((p) => [p.id, p.runtime === undefined ? true : runtimes === null ? null : runtimes.includes(p.runtime)]));
  }

  private async runtimes(): Promise<string[] | null> {
    const c = this.cached;
    if (c && this.now() - c.at < (c.runtimes === null ? this.failureTtlMs : this.ttlMs)) return c.runtimes;
    if (!this.source.runtimes) return null;
    if (!this.pending) {
      this.pending = this.source
        .runtimes()
        .catch(() => null)
        .then((runtimes) => {
          this.cached = { at: this.now(), runtimes };
          this.pending = null;
          return runtimes;
        });
    }
    // A slow engine answers "unknown" now; its answer, when it comes, is cached for the next caller.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.waitMs);
    });
    try {
      return await Promise.race([this.pending, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
