/**
 * An image's sources digest covers everything Ship's executable is compiled
 * from: src/ship and the protocol it shares with Bay (src/protocol). A change in
 * either makes existing images stale; a change elsewhere in Bay does not.
 */
import { afterEach, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shipSourcesDigest } from "../../src/bay/images/ship-source.ts";

const ROOT = join(import.meta.dir, "../..");
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("the digest moves with src/ship and src/protocol, not with Bay's own sources", async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-digest-"));
  for (const d of ["src/ship", "src/protocol", "src/bay/logger.ts"]) cpSync(join(ROOT, d), join(dir, d), { recursive: true });
  const base = await shipSourcesDigest(dir);
  expect(await shipSourcesDigest(dir)).toBe(base);

  writeFileSync(join(dir, "src/bay/logger.ts"), "// Bay only\n", { flag: "a" });
  expect(await shipSourcesDigest(dir)).toBe(base);

  writeFileSync(join(dir, "src/protocol/ship/constants.ts"), "// changed\n", { flag: "a" });
  const afterProtocol = await shipSourcesDigest(dir);
  expect(afterProtocol).not.toBe(base);

  writeFileSync(join(dir, "src/ship/main.ts"), "// changed\n", { flag: "a" });
  expect(await shipSourcesDigest(dir)).not.toBe(afterProtocol);
});
