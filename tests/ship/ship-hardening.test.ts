/**
 * Unit checks of Ship's filesystem hardening that the HTTP behaviour suite cannot
 * reach: the post-open descriptor check against a swapped path, an upload that
 * crosses its limit, the stalled-upload timeout and descriptor hygiene.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdir, mkdtemp, open, readdir, readlink, realpath, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ShipError } from "../../src/ship/errors.ts";
import { readTextFile } from "../../src/ship/filesystem/files.ts";
import { receiveUpload } from "../../src/ship/filesystem/transfer.ts";
import { assertFdInside, O, openInside, openParentDir, resolveExisting, resolveWorkspacePath } from "../../src/ship/paths.ts";

let base = "";
let ws = "";
let outside = "";

beforeAll(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), "ship-hardening-")));
  ws = join(base, "ws");
  outside = join(base, "outside");
  await mkdir(ws);
  await mkdir(outside);
  await writeFile(join(outside, "f"), "secret");
});

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof ShipError ? err.code : `not a ShipError: ${err}`;
  }
}

test("assertFdInside: refuses a descriptor whose real path is outside the workspace", async () => {
  await writeFile(join(ws, "in.txt"), "x");
  const inside = await open(join(ws, "in.txt"), "r");
  const out = await open(join(outside, "f"), "r");
  try {
    expect(await assertFdInside(ws, inside.fd, "in.txt")).toBe(join(ws, "in.txt"));
    expect(await codeOf(assertFdInside(ws, out.fd, "f"))).toBe("invalid_path");
  } finally {
    await inside.close();
    await out.close();
  }
});

test("a directory swapped for a symlink after the check is refused, not followed", async () => {
  await mkdir(join(ws, "d"));
  await writeFile(join(ws, "d", "f"), "mine");
  const target = await resolveExisting(ws, "d/f");
  // The race, made deterministic: `d` becomes a symlink to outside between check and open.
  await rename(join(ws, "d"), join(ws, "d-old"));
  await symlink(outside, join(ws, "d"));
  try {
    expect(await codeOf(openInside(target, O.O_RDONLY))).toBe("invalid_path");
    expect(await codeOf(openParentDir(target))).toBe("invalid_path");
    const fresh = await resolveWorkspacePath(ws, "d-old/new.txt");
    await rm(join(ws, "d-old"), { recursive: true });
    await symlink(outside, join(ws, "d-old"));
    expect(await codeOf(openParentDir(fresh, { create: true }))).toBe("invalid_path");
    expect(await readdir(outside)).toEqual(["f"]);
  } finally {
    await rm(join(ws, "d"), { force: true });
    await rm(join(ws, "d-old"), { recursive: true, force: true });
  }
});

test("an upload over its limit is refused mid-stream and leaves no file", async () => {
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= 20) return controller.close();
      sent++;
      controller.enqueue(chunk);
    },
  });
  const request = new Request("http://ship/upload", { method: "POST", body });
  expect(await codeOf(receiveUpload(ws, request, "big.bin", 256 * 1024))).toBe("payload_too_large");
  expect(sent).toBeLessThan(20);
  expect((await readdir(ws)).filter((n) => n.startsWith(".ship-upload-") || n === "big.bin")).toEqual([]);
});

test("a stalled upload times out and leaves no temporary file", async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("some bytes")); // ...and then nothing more
    },
    cancel() {
      cancelled = true;
    },
  });
  const request = new Request("http://ship/upload", { method: "POST", body });
  expect(await codeOf(receiveUpload(ws, request, "stalled.bin", 1024 * 1024, { idleMs: 300 }))).toBe("timeout");
  expect(cancelled).toBe(true);
  expect((await readdir(ws)).filter((n) => n.startsWith(".ship-upload-") || n === "stalled.bin")).toEqual([]);
});

test("reading a FIFO is refused at once and leaves no descriptor open", async () => {
  const fifo = join(ws, "fifo");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  // Count this process's descriptors that point at the FIFO. The total count is no
  // measure: other async work in the test process opens and closes descriptors.
  const fifoFds = async () => {
    let n = 0;
    for (const fd of await readdir("/proc/self/fd")) {
      const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
      if (target === fifo) n++;
    }
    return n;
  };
  // Guard the probe itself: a descriptor held open on the FIFO is seen.
  const held = await open(fifo, O.O_RDONLY | O.O_NONBLOCK);
  expect(await fifoFds()).toBe(1);
  await held.close();
  for (let i = 0; i < 5; i++) {
    expect(await codeOf(readTextFile(ws, "fifo", 1024))).toBe("validation_error");
  }
  expect(await fifoFds()).toBe(0);
});

test("makeNonDumpable: true where prctl works (PR_GET_DUMPABLE then says 0); false where it cannot be called, which Ship refuses to start on", async () => {
  const { makeNonDumpable } = await import("../../src/ship/harden.ts");
  expect(makeNonDumpable("libbay-no-such-libc.so")).toBe(false);
  // In a child process, so this test runner stays dumpable.
  const child = Bun.spawnSync([
    process.execPath,
    "-e",
    `const { dlopen, FFIType } = require("bun:ffi");
     const libc = dlopen("libc.so.6", { prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 } });
     const before = libc.symbols.prctl(3, 0, 0, 0, 0);
     const { makeNonDumpable } = await import(${JSON.stringify(join(import.meta.dir, "../../src/ship/harden.ts"))});
     const ok = makeNonDumpable();
     console.log(JSON.stringify({ ok, before, after: libc.symbols.prctl(3, 0, 0, 0, 0) }));`,
  ]);
  expect(JSON.parse(child.stdout.toString())).toEqual({ ok: true, before: 1, after: 0 });
});
