/** The read-only catalogue of runtime profiles, from configuration. */
import type { ProfileConfig } from "../config.ts";
import { BayError } from "../errors.ts";

export type Capability = "python" | "shell" | "filesystem";
export type Profile = ProfileConfig;

export class ProfileRegistry {
  private readonly byId: Map<string, Profile>;

  constructor(profiles: Profile[]) {
    this.byId = new Map(profiles.map((p) => [p.id, p]));
  }

  list(): Profile[] {
    return [...this.byId.values()];
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
