/**
 * E2B templates are Bay profiles. `base` (the e2b SDK's default) and
 * `code-interpreter-v1` (@e2b/code-interpreter's) are the default profile; any
 * other name must be a profile id. E2B's `name:tag` form is accepted with the
 * tag ignored only when it is `latest` or `default`.
 */
import { BayError } from "../errors.ts";
import type { Profile, ProfileRegistry } from "../domain/profiles.ts";

export const DEFAULT_TEMPLATES = ["base", "code-interpreter-v1"] as const;

export class TemplateCatalogue {
  constructor(
    private readonly profiles: ProfileRegistry,
    private readonly defaultProfile: string,
  ) {}

  /** The profile a template names; 404 (E2B's answer for an unknown template) otherwise. */
  resolve(templateId: string): Profile {
    let name = templateId;
    const colon = name.indexOf(":");
    if (colon >= 0) {
      const tag = name.slice(colon + 1);
      if (tag !== "latest" && tag !== "default") throw unknownTemplate(templateId);
      name = name.slice(0, colon);
    }
    if ((DEFAULT_TEMPLATES as readonly string[]).includes(name)) {
      const def = this.defaultOrNull();
      if (!def) {
        throw unknownTemplate(templateId, `its profile, e2b.default_profile "${this.defaultProfile}", is not one of this Bay's profiles`);
      }
      return def;
    }
    const p = this.profiles.list().find((x) => x.id === name);
    if (!p) throw unknownTemplate(templateId);
    return p;
  }

  /**
   * Template ids this Bay answers for: the two defaults (when e2b.default_profile is
   * one of the profiles) and every profile id.
   */
  list(): Array<{ templateId: string; profile: Profile }> {
    const def = this.defaultOrNull();
    return [
      ...(def ? DEFAULT_TEMPLATES.map((t) => ({ templateId: t as string, profile: def })) : []),
      ...this.profiles.list().map((p) => ({ templateId: p.id, profile: p })),
    ];
  }

  /**
   * The default templates' profile, or null when a Bay's profiles do not include it:
   * its sandboxes, other templates and data plane still work; only `base` and
   * `code-interpreter-v1` are unknown.
   */
  private defaultOrNull(): Profile | null {
    return this.profiles.list().find((p) => p.id === this.defaultProfile) ?? null;
  }
}

const unknownTemplate = (id: string, why = "templates are Bay profiles (or base / code-interpreter-v1)") =>
  new BayError("not_found", `template '${id}' not found: ${why}`, {
    details: { kind: "template", id },
  });
