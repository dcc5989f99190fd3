/**
 * The soak's ledger (scripts/soak/ledger.ts): what it accepts as intact after a
 * write that succeeded, after one a fault cut short (old or new version, or
 * none), what it counts as lost, and that a loss is counted once. The client is
 * a stand-in serving bytes from a map: this is the ledger's bookkeeping, the soak
 * itself reads real files through a real Bay.
 */
import { describe, expect, test } from "bun:test";
import type { SoakClient } from "../../scripts/soak/client.ts";
import { Ledger, type Volume } from "../../scripts/soak/ledger.ts";

const vol: Volume = { name: "A:ws-1", workspaceRoute: "/v1/workspaces/ws-1", sandboxRoute: "/v1/sandboxes/sb-1" };
const bytes = (s: string) => new TextEncoder().encode(s);

/** Serves what `disk` holds at each path; a path in `failing` answers 503. */
function clientOf(disk: Map<string, Uint8Array>, failing = new Set<string>()): SoakClient {
  return {
    download: async (_route: string, path: string) => {
      if (failing.has(path)) return { status: 503, bytes: null };
      const b = disk.get(path);
      return b ? { status: 200, bytes: b } : { status: 404, bytes: null };
    },
  } as unknown as SoakClient;
}

const pick = (v: Volume) => v.sandboxRoute;

describe("Ledger", () => {
  test("a successful write must read back byte for byte; anything else is lost, and counted once", async () => {
    const ledger = new Ledger();
    const disk = new Map([["f", bytes("one")]]);
    ledger.wrote(vol, "f", bytes("one"), true);
    expect(await ledger.verify(clientOf(disk), pick)).toMatchObject({ files: 1, bytes: 3, lost: [], bytesLost: 0 });
    disk.set("f", bytes("onf"));
    const bad = await ledger.verify(clientOf(disk), pick);
    expect(bad.lost).toHaveLength(1);
    expect(bad.bytesLost).toBe(3);
    // What is there now is the reference from here on: the same loss is not counted again.
    expect((await ledger.verify(clientOf(disk), pick)).lost).toEqual([]);
  });

  test("a write cut by a fault may leave the old version, the new one, or (for a new path) nothing", async () => {
    for (const [disk, ok] of [
      [new Map([["f", bytes("old")]]), true],
      [new Map([["f", bytes("new")]]), true],
      [new Map([["f", bytes("ne")]]), false],
    ] as const) {
      const ledger = new Ledger();
      ledger.wrote(vol, "f", bytes("old"), true);
      ledger.wrote(vol, "f", bytes("new"), false);
      expect((await ledger.verify(clientOf(disk), pick)).lost.length === 0).toBe(ok);
    }
    const fresh = new Ledger();
    fresh.wrote(vol, "g", bytes("new"), false);
    expect((await fresh.verify(clientOf(new Map()), pick)).lost).toEqual([]);
  });

  test("once an uncertain write settled one way, only that version is right", async () => {
    const ledger = new Ledger();
    const disk = new Map([["f", bytes("new")]]);
    ledger.wrote(vol, "f", bytes("old"), true);
    ledger.wrote(vol, "f", bytes("new"), false);
    expect((await ledger.verify(clientOf(disk), pick)).lost).toEqual([]);
    disk.set("f", bytes("old"));
    expect((await ledger.verify(clientOf(disk), pick)).lost).toHaveLength(1);
  });

  test("a read that fails is unreadable, not lost, and checked again next time", async () => {
    const ledger = new Ledger();
    ledger.wrote(vol, "f", bytes("x"), true);
    const r = await ledger.verify(clientOf(new Map([["f", bytes("x")]]), new Set(["f"])), pick);
    expect(r).toMatchObject({ files: 0, lost: [], unreadable: [{ path: "f", status: 503 }] });
    expect((await ledger.verify(clientOf(new Map([["f", bytes("x")]])), pick)).files).toBe(1);
  });

  test("bytes written count only writes that succeeded", () => {
    const ledger = new Ledger();
    ledger.wrote(vol, "f", bytes("abc"), true);
    ledger.wrote(vol, "g", bytes("defg"), false);
    expect({ writes: ledger.writes, bytes: ledger.bytesWritten, files: ledger.size }).toEqual({ writes: 1, bytes: 3, files: 2 });
  });
});
