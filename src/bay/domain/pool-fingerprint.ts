/**
 * What a warm-pool member is made from: the container its profile gives, as the driver
 * creates it (the engine request with image, runtime, network, resources, hardening and
 * the environment with the host's values resolved; how it is attached and reached), the
 * id of the image its name points at, and what its warm-up depends on (the profile's
 * languages and capabilities, as sets). A member is handed out only while this is what
 * its profile makes now: a profile changed across a restart, Bay upgraded to create
 * containers otherwise, or the image rebuilt, never leaves an owner on a container made
 * the old way (reviews s95 M1, s97 M1). What a claim sets (TTL, idle timeout) or what
 * describes the profile is left out, so replicas on one configuration agree however it
 * is written (keys sorted, sets sorted: s97 M2).
 *
 * It is a sha256 of that, so the resolved environment is not kept in the database in
 * the clear. It is not salted: whoever has a copy of the database already has every
 * session's secret and the E2B token key in it (s97 L3).
 */
import { canonicalJson } from "../../protocol/canonical-json.ts";
import type { Profile } from "./profiles.ts";

export function poolFingerprint(profile: Profile, recipe: unknown, imageId: string): string {
  const warmUp = { languages: [...profile.languages].sort(), capabilities: [...profile.capabilities].sort() };
  return new Bun.CryptoHasher("sha256").update(canonicalJson({ recipe, imageId, warmUp })).digest("hex");
}
