/**
 * What a warm-pool member is made from: its profile (the pool's own size and age aside),
 * the container that profile gives (image, runtime, network, resources, environment with
 * the host's values resolved, Ship's settings) and the id of the image its name points at.
 * A member is handed out only while this is what its profile makes now, and is retired
 * otherwise: a profile changed and Bay restarted, or the image rebuilt, never leaves an
 * owner on a container made the old way (review s95 M1). Replicas with one configuration
 * agree on it (keys sorted); it is a hash, so the profile's resolved secrets are not stored.
 */
import { canonicalJson } from "../../protocol/canonical-json.ts";
import type { ContainerShape } from "./session-starter.ts";
import type { Profile } from "./profiles.ts";

export function poolFingerprint(profile: Profile, container: ContainerShape, imageId: string | null): string {
  const { warm_pool: _pool, ...made } = profile;
  return new Bun.CryptoHasher("sha256").update(canonicalJson({ profile: made, container, imageId })).digest("hex");
}
