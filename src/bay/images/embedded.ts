/**
 * Ship's build inputs carried inside the compiled `dist/bay`. In a source
 * checkout this is null and images are built from src/ship; scripts/build.ts
 * replaces this module, in the bundle only, with one that embeds the
 * Dockerfile, the compiled (gzipped) Ship executable and their digest, so
 * `bay images build` works from the binary alone.
 */
export interface EmbeddedShip {
  /** Path of the gzipped Ship executable inside the binary's embedded files. */
  shipGzPath: string;
  dockerfile: string;
  /** shipSourcesDigest() of the sources the executable was compiled from. */
  sourcesDigest: string;
  /** The Bun that compiled it. */
  bunVersion: string;
}

export const EMBEDDED_SHIP: EmbeddedShip | null = null;
