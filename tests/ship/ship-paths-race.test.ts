/**
 * Ship's path resolution when the deepest existing part of a path vanishes
 * between its realpath and its stat (a delete racing a listing of
 * `file/child`): the answer is Ship's file_not_found, not an unexpected error
 * (which Bay relayed as a 502). The race is made deterministic by wrapping
 * `stat` so that it deletes its target first, as the concurrent call would. And a
 * directory opened, then deleted before its descriptor is checked.
 */
import { afterAll, expect, mock, test } from "bun:test";
import * as fsp from "node:fs/promises";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const realStat = fsp.stat;
/** Paths whose stat deletes them first. */
const vanishing = new Set<string>();
mock.module("node:fs/promises", () => ({
  ...fsp,
  stat: async (path: string, ...rest: unknown[]) => {
    if (vanishing.has(String(path))) await fsp.rm(String(path), { force: true });
    return (realStat as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
  },
}));
const { assertFdInside, resolveWorkspacePath } = await import("../../src/ship/paths.ts");
const { ShipError } = await import("../../src/ship/errors.ts");

const workspace = mkdtempSync(join(tmpdir(), "ship-paths-race-"));
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

test("a parent file deleted between realpath and stat: file_not_found, not an unexpected error", async () => {
  mkdirSync(join(workspace, "fuzz"));
  writeFileSync(join(workspace, "fuzz/hello.txt"), "hi");
  vanishing.add(await fsp.realpath(join(workspace, "fuzz/hello.txt")));
  const err = await resolveWorkspacePath(workspace, "fuzz/hello.txt/x").then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShipError);
  expect((err as InstanceType<typeof ShipError>).code).toBe("file_not_found");
});

test("without the race, a parent that is a file is still invalid_path", async () => {
  vanishing.clear();
  writeFileSync(join(workspace, "plain.txt"), "hi");
  const err = await resolveWorkspacePath(workspace, "plain.txt/x").catch((e: unknown) => e);
  expect((err as InstanceType<typeof ShipError>).code).toBe("invalid_path");
});

test("a directory deleted after it was opened: its descriptor check answers file_not_found", async () => {
  mkdirSync(join(workspace, "gone"));
  const handle = await fsp.open(join(workspace, "gone"), "r");
  try {
    await fsp.rmdir(join(workspace, "gone"));
    const err = await assertFdInside(workspace, handle.fd, "gone").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShipError);
    expect((err as InstanceType<typeof ShipError>).code).toBe("file_not_found");
  } finally {
    await handle.close();
  }
});
