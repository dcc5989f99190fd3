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
    if ((DEFAULT_TEMPLATES as readonly string[]).includes(name)) return this.profiles.require(this.defaultProfile);
    const p = this.profiles.list().find((x) => x.id === name);
    if (!p) throw unknownTemplate(templateId);
    return p;
  }

  /** Template ids this Bay answers for: the two defaults and every profile id. */
  list(): Array<{ templateId: string; profile: Profile }> {
    const def = this.profiles.require(this.defaultProfile);
    return [
      ...DEFAULT_TEMPLATES.map((t) => ({ templateId: t as string, profile: def })),
      ...this.profiles.list().map((p) => ({ templateId: p.id, profile: p })),
    ];
  }
}

const unknownTemplate = (id: string) =>
  new BayError("not_found", `template '${id}' not found: templates are Bay profiles (or base / code-interpreter-v1)`, {
    details: { kind: "template", id },
  });
