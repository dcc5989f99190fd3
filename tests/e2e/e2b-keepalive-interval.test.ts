/**
 * envd's streams honour the client's `Keepalive-Ping-Interval` (seconds), as envd
 * reads it for both process output and a watched directory, within Bay's [1 s, 15 s]:
 * a quiet stream gets a keepalive at that interval, and without the header at 15 s.
 * On the real engine, raw Connect calls (the SDK always asks for 50 s, above the cap).
 */
import { describe, expect, test } from "bun:test";
import { connectFrame, readConnectFrames } from "../support/connect-frame.ts";
import type { TestBay } from "../support/harness.ts";
import { type E2bCreated, e2bSandboxBay } from "./support/e2b.ts";

let t: TestBay;
let sb: E2bCreated;
e2bSandboxBay((bay, created) => {
  t = bay;
  sb = created;
});

/** A streaming envd call, its frames read for `forMs`. */
async function stream(method: string, msg: unknown, forMs: number, interval?: string) {
  const res = await t.bay.app.request(`/e2b/${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/connect+json",
      "e2b-sandbox-id": sb.sandboxID,
      "x-access-token": sb.envdAccessToken,
      ...(interval === undefined ? {} : { "keepalive-ping-interval": interval }),
    },
    body: new Blob([connectFrame(msg)]),
  });
  expect(res.status).toBe(200);
  return readConnectFrames(res.body!, forMs);
}

const keepalivesOf = (frames: Array<{ atMs: number; msg: any }>, isKeepalive: (m: any) => boolean) =>
  frames.filter((f) => isKeepalive(f.msg)).map((f) => f.atMs);
const watchKeepalive = (m: any) => m.keepalive !== undefined;
const processKeepalive = (m: any) => m.event?.keepalive !== undefined;

describe("Keepalive-Ping-Interval", () => {
  test("a quiet WatchDir stream gets a keepalive every second when asked for 1 s, none in 3.5 s without the header", async () => {
    const asked = await stream("filesystem.Filesystem/WatchDir", { path: "/home/user" }, 3_500, "1");
    expect(asked[0]?.msg).toEqual({ start: {} });
    const at = keepalivesOf(asked, watchKeepalive);
    expect(at.length).toBeGreaterThanOrEqual(2);
    expect(at.length).toBeLessThanOrEqual(4);
    const plain = await stream("filesystem.Filesystem/WatchDir", { path: "/home/user" }, 3_500);
    expect(plain[0]?.msg).toEqual({ start: {} });
    expect(keepalivesOf(plain, watchKeepalive)).toEqual([]);
  }, 60_000);

  test("a quiet process gets a keepalive every second when asked for 1 s, none in 3.5 s without the header; a tiny interval is 1 s", async () => {
    const sleep = { process: { cmd: "/bin/sleep", args: ["3"] } };
    const asked = await stream("process.Process/Start", sleep, 5_000, "1");
    expect(keepalivesOf(asked, processKeepalive).length).toBeGreaterThanOrEqual(2);
    expect(asked.some((f) => f.msg.event?.end)).toBe(true);
    const tiny = await stream("process.Process/Start", sleep, 5_000, "0.001");
    expect(keepalivesOf(tiny, processKeepalive).length).toBeLessThanOrEqual(4);
    const plain = await stream("process.Process/Start", sleep, 5_000);
    expect(keepalivesOf(plain, processKeepalive)).toEqual([]);
    expect(plain.some((f) => f.msg.event?.end)).toBe(true);
  }, 60_000);

  test("a tiny or junk interval on WatchDir cannot make Bay spin out frames", async () => {
    const tiny = await stream("filesystem.Filesystem/WatchDir", { path: "/home/user" }, 2_500, "0.000001");
    expect(keepalivesOf(tiny, watchKeepalive).length).toBeLessThanOrEqual(3);
    const junk = await stream("filesystem.Filesystem/WatchDir", { path: "/home/user" }, 2_500, "-5");
    expect(keepalivesOf(junk, watchKeepalive)).toEqual([]);
  }, 60_000);
});
