/**
 * How a watch opens what it walks (dir-open.ts): a waiting walk opens its directory
 * through the very holding directory it checked (review s77: the check and the walk
 * opened the holder apart, so a directory swapped in between could be walked in its place).
 */
import { expect, test } from "bun:test";
import { closeSync, fstatSync, mkdirSync, readlinkSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fdPath, openChild, openHolder } from "../../src/ship/watch/dir-open.ts";
import { temp } from "./support/watch-fixtures.ts";

const idOf = (path: string) => {
  const st = statSync(path);
  return `${st.dev}:${st.ino}`;
};

/**
 * What a waiting walk opens (tree-walk.ts walkWaiting): the holder checked by its identity
 * (openHolder), then the name through that holder's descriptor (openChild). The path the
 * descriptor holds, or what was answered.
 */
function opened(holder: string, id: string, name: string): string | null {
  const dir = openHolder(holder, id);
  if (dir === "behind") return dir;
  let fd: number | null;
  try {
    fd = openChild(dir, name);
  } finally {
    closeSync(dir);
  }
  if (fd === null) return null;
  try {
    expect(fstatSync(fd).isDirectory()).toBe(true);
    return readlinkSync(fdPath(fd));
  } finally {
    closeSync(fd);
  }
}

test("the directory in the holder it checked; behind when another directory, or none, is at the holder's path", () => {
  const root = temp();
  const h = join(root, "h");
  mkdirSync(join(h, "d"), { recursive: true });
  const id = idOf(h);
  expect(opened(h, id, "d")).toBe(join(h, "d"));
  // The holder moved away and another directory took its place: not the one checked.
  renameSync(h, join(root, "moved"));
  mkdirSync(join(h, "d"), { recursive: true });
  expect(opened(h, id, "d")).toBe("behind");
  // Where the holder is now (the hub caught up): found again, by its identity.
  expect(opened(join(root, "moved"), id, "d")).toBe(join(root, "moved", "d"));
  // Nothing at the holder's path.
  expect(opened(join(root, "none"), id, "d")).toBe("behind");
});

test("a symlink at the holder's path or at the name is never followed", () => {
  const root = temp();
  const real = join(root, "real");
  mkdirSync(join(real, "d"), { recursive: true });
  mkdirSync(join(root, "outside"));
  symlinkSync(real, join(root, "link"));
  // The holder reached through a symlink is not the holder at that exact path.
  expect(opened(join(root, "link"), idOf(real), "d")).toBe("behind");
  // A symlink in the holder named as the walk's directory: nothing to walk there.
  symlinkSync(join(root, "outside"), join(real, "s"));
  expect(opened(real, idOf(real), "s")).toBeNull();
  // Gone, or a file: nothing to walk.
  expect(opened(real, idOf(real), "missing")).toBeNull();
  writeFileSync(join(real, "f"), "x");
  expect(opened(real, idOf(real), "f")).toBeNull();
});

test("a name is one entry of the holder: none that leads out of it", () => {
  const root = temp();
  const h = join(root, "h");
  mkdirSync(join(h, "d", "x"), { recursive: true });
  symlinkSync(join(h, "d"), join(h, "ln"));
  for (const name of ["", ".", "..", "d/x", "ln/x", "/"])
    expect({ name, opened: opened(h, idOf(h), name) }).toEqual({ name, opened: null });
});
