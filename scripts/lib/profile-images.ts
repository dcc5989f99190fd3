/**
 * What `bun run start` does about the configured profiles' images before Bay
 * starts: which are present, which Bay's image build can make (bay-ship,
 * bay-ship-data), and which are someone else's to provide. Pure, so it is
 * testable without an engine; scripts/start.ts feeds it what Docker says.
 */
import type { BayConfig } from "../../src/bay/config.ts";
import { IMAGE_BUILD_COMMAND } from "../../src/bay/domain/health-service.ts";
import { SHIP_IMAGES, type ShipImageTarget } from "../ship-images.ts";

export interface ProfileImage {
  image: string;
  /** Profile ids using this image. */
  profiles: string[];
  /** The image:build target that makes it; undefined for images Bay does not build. */
  target?: ShipImageTarget;
  /** How to build it by hand. */
  buildCommand?: string;
}

export interface ImagePlan {
  present: ProfileImage[];
  /** Missing, and Bay's image build makes them. */
  toBuild: ProfileImage[];
  /** Missing, and not Bay's: the operator pulls or builds them. */
  foreign: ProfileImage[];
}

/** The distinct images of the configured profiles, with the build target of Bay's own. */
export function profileImages(config: Pick<BayConfig, "profiles">): ProfileImage[] {
  const byImage = new Map<string, ProfileImage>();
  const targets = Object.entries(SHIP_IMAGES) as Array<[ShipImageTarget, string]>;
  for (const p of config.profiles) {
    let entry = byImage.get(p.image);
    if (!entry) {
      const target = targets.find(([, tag]) => sameImage(tag, p.image))?.[0];
      entry = { image: p.image, profiles: [], ...(target ? { target, buildCommand: `${IMAGE_BUILD_COMMAND} --only ${target}` } : {}) };
      byImage.set(p.image, entry);
    }
    entry.profiles.push(p.id);
  }
  return [...byImage.values()];
}

/** Splits the profiles' images by presence and by who builds the missing ones. */
export function planImages(images: ProfileImage[], present: (image: string) => boolean): ImagePlan {
  const plan: ImagePlan = { present: [], toBuild: [], foreign: [] };
  for (const img of images) {
    if (present(img.image)) plan.present.push(img);
    else if (img.target) plan.toBuild.push(img);
    else plan.foreign.push(img);
  }
  return plan;
}

/** `bay-ship` and `bay-ship:latest` (and docker.io/library/…) name the same image. */
function sameImage(a: string, b: string): boolean {
  const norm = (ref: string) => {
    let r = ref.replace(/^(docker\.io\/)?(library\/)?/, "");
    if (!/:[^/]+$/.test(r) && !r.includes("@")) r += ":latest";
    return r;
  };
  return norm(a) === norm(b);
}
