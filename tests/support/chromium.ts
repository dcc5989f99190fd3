/**
 * Debian's headless Chromium driven by playwright-core (which never downloads a
 * browser): a fresh profile directory per launch, no background traffic, and every
 * request that leaves loopback refused and recorded, so a page that reaches for a
 * CDN fails its test instead of loading.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Screenshots and other artefacts tests keep (gitignored). */
export const TEST_OUTPUT = join(import.meta.dir, "../../test-output");

export interface Browser {
  context: BrowserContext;
  /** URLs the page tried to load from anywhere but 127.0.0.1 (each refused). */
  offsite: string[];
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/prereqs.sh (apt-get install chromium)`);
  }
  const profile = mkdtempSync(join(tmpdir(), "bay-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
  const offsite: string[] = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "data:" || url.protocol === "blob:" || url.hostname === "127.0.0.1") return route.continue();
    offsite.push(url.href);
    return route.abort("blockedbyclient");
  });
  return {
    context,
    offsite,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A path under test-output/ for an artefact, its directory created. */
export function outputPath(...parts: string[]): string {
  const path = join(TEST_OUTPUT, ...parts);
  mkdirSync(join(path, ".."), { recursive: true });
  return path;
}
