/**
 * Ship's sweep of upload temporaries a dead Ship left in the workspace (review
 * s41): only stale regular files with the exact temporary name, in the top
 * directory; a live upload's file, the user's own files, links and directories by
 * that name are left alone.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sweepUploadTemps } from "../../src/ship/filesystem/upload-sweep.ts";

let ws: string;
let outside: string;
beforeEach(() => {
  ws = mkdtempSync(join(tmpdir(), "ship-sweep-"));
  outside = mkdtempSync(join(tmpdir(), "ship-sweep-outside-"));
});
afterEach(() => {
  rmSync(ws, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const age = (path: string, ms: number) => {
  const t = (Date.now() - ms) / 1000;
  utimesSync(path, t, t);
};

test("removes stale temporaries only; keeps a live upload's, the user's files, links and directories", async () => {
  const stale = join(ws, ".ship-upload-0123456789ab.tmp");
  const live = join(ws, ".ship-upload-aaaaaaaaaaaa.tmp");
  const userLookalike = join(ws, ".ship-upload-0123456789ab.tmp.bak");
  const wrongHex = join(ws, ".ship-upload-ZZZZZZZZZZZZ.tmp");
  const nested = join(ws, "sub", ".ship-upload-bbbbbbbbbbbb.tmp");
  const link = join(ws, ".ship-upload-cccccccccccc.tmp");
  const dir = join(ws, ".ship-upload-dddddddddddd.tmp");
  const target = join(outside, "precious");
  mkdirSync(join(ws, "sub"));
  mkdirSync(dir);
  for (const f of [stale, live, userLookalike, wrongHex, nested, target]) writeFileSync(f, "x");
  symlinkSync(target, link);
  for (const f of [stale, userLookalike, wrongHex, nested, target, dir]) age(f, 2 * HOUR);
  age(live, 60_000);

  const removed = await sweepUploadTemps(ws, 60_000);
  expect(removed).toEqual([".ship-upload-0123456789ab.tmp"]);
  expect(existsSync(stale)).toBe(false);
  for (const kept of [live, userLookalike, wrongHex, nested, dir, target]) expect(existsSync(kept)).toBe(true);
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
});

test("a long upload idle time raises the age a temporary must reach", async () => {
  const f = join(ws, ".ship-upload-0123456789ab.tmp");
  writeFileSync(f, "x");
  age(f, 30 * 60_000);
  // Idle cut at 20 minutes: a file untouched for 30 may still be a live upload's (stale after 40).
  expect(await sweepUploadTemps(ws, 20 * 60_000)).toEqual([]);
  expect(await sweepUploadTemps(ws, 60_000)).toEqual([".ship-upload-0123456789ab.tmp"]);
});

test("a missing or unreadable workspace is no error", async () => {
  expect(await sweepUploadTemps(join(ws, "nope"), 60_000)).toEqual([]);
});
