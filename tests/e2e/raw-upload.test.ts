/**
 * Raw uploads (`application/octet-stream` with `?path=`) through a Bay process to a
 * real Ship: the body with a Content-Length is passed on without Bay reading it, so
 * what keeps a cut body out of the workspace is HTTP's framing on both legs. A body
 * that breaks off before its declared length never lands (not even over an existing
 * file), leaves no temporary file in the workspace and no spool in Bay; a request
 * with both framings is refused; Bay keeps serving.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { docker, requireShipImages } from "./support/e2e.ts";

let bay: BayProcess;
let dir: string;
const instanceId = `e2e-raw-up-${crypto.randomUUID().slice(0, 8)}`;
const MiB = 1024 * 1024;

beforeAll(async () => {
  await requireShipImages();
  dir = mkdtempSync(join(tmpdir(), "bay-raw-up-"));
  bay = await startBayProcess({ dbPath: join(dir, "bay.db"), instanceId, dir, env: { BAY_LOG_LEVEL: "warn" } });
});

afterAll(async () => {
  await bay?.kill("SIGTERM");
  await removeLabelled(docker, { "bay.instance_id": instanceId });
  rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

const rawUpload = (route: string, path: string, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${bay.url}${route}/upload?path=${encodeURIComponent(path)}`, {
    method: "POST",
    headers: { "x-owner": "alice", "content-type": "application/octet-stream", ...headers },
    body,
    duplex: "half",
  } as RequestInit);

const download = async (route: string, path: string) => {
  const r = await fetch(`${bay.url}${route}/download?path=${encodeURIComponent(path)}`, { headers: { "x-owner": "alice" } });
  return { status: r.status, bytes: new Uint8Array(await r.arrayBuffer()) };
};

/** Sends a request head and the first `sent` bytes of its body on a bare socket, then hangs up. */
function cutUpload(url: string, head: string, sent: number): Promise<void> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => {
      s.write(head);
      s.write(Buffer.alloc(sent, 0x42), () => setTimeout(() => s.destroy(), 300));
    });
    s.on("close", () => resolve());
    s.on("error", reject);
  });
}

/** Sends a whole request on a bare socket; its status line's code. */
function rawRequest(url: string, request: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(request));
    let text = "";
    s.on("data", (d) => {
      text += d.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(0));
  });
}

const spools = () => {
  try {
    return readdirSync(join(tmpdir(), "bay-spool", String(bay.pid)));
  } catch {
    return [];
  }
};

for (const target of ["sandbox", "workspace"] as const) {
  describe(`${target}: raw uploads`, () => {
    let route: string;
    let id: string;
    beforeAll(async () => {
      const collection = target === "sandbox" ? "/v1/sandboxes" : "/v1/workspaces";
      const created = await api(bay.url, "POST", collection, {});
      expect(created.status).toBe(201);
      id = created.body.id;
      route = `${collection}/${id}/filesystem`;
    });

    test("8 MiB with a Content-Length: stored byte for byte", async () => {
      const data = crypto.getRandomValues(new Uint8Array(64 * 1024));
      const big = new Uint8Array(8 * MiB);
      for (let i = 0; i < big.byteLength; i += data.byteLength) big.set(data, i);
      big[12345] = 7;
      const r = await rawUpload(route, "raw/big.bin", big);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { size: number }).size).toBe(8 * MiB);
      const back = await download(route, "raw/big.bin");
      expect(back.status).toBe(200);
      expect(sha(back.bytes)).toBe(sha(big));
    });

    test("chunked (no Content-Length): stored whole", async () => {
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (i++ < 5) ctrl.enqueue(new Uint8Array(100_000).fill(i));
          else ctrl.close();
        },
      });
      const r = await rawUpload(route, "raw/chunked.bin", body);
      expect(r.status).toBe(200);
      const back = await download(route, "raw/chunked.bin");
      expect(back.bytes.byteLength).toBe(500_000);
      expect([back.bytes[0], back.bytes[499_999]]).toEqual([1, 5]);
    });

    test("a body cut before its declared length is never kept, even over an existing file", async () => {
      const keep = new Uint8Array(1000).fill(0x41);
      expect((await rawUpload(route, "raw/keep.bin", keep)).status).toBe(200);
      const before = new Set(spools());
      const head = (path: string) =>
        `POST ${route}/upload?path=${path} HTTP/1.1\r\nHost: x\r\nX-Owner: alice\r\nContent-Type: application/octet-stream\r\nContent-Length: ${4 * MiB}\r\n\r\n`;
      await cutUpload(bay.url, head("raw/cut.bin"), MiB);
      await cutUpload(bay.url, head("raw/keep.bin"), MiB);
      // Bay and Ship notice the cut connections in their own time.
      let cut = { status: 0, bytes: new Uint8Array() };
      for (let i = 0; i < 50; i++) {
        cut = await download(route, "raw/cut.bin");
        const kept = await download(route, "raw/keep.bin");
        expect(kept.bytes).toEqual(keep);
        if (cut.status === 404 && (target === "workspace" || (await leftovers(id)).length === 0)) break;
        await Bun.sleep(100);
      }
      expect(cut.status).toBe(404);
      if (target === "sandbox") expect(await leftovers(id)).toEqual([]);
      expect(spools().filter((s) => !before.has(s))).toEqual([]);
      expect((await api(bay.url, "GET", "/health")).status).toBe(200);
    });

    test("both framings at once (Content-Length and chunked) are refused, nothing stored", async () => {
      const body = "5\r\nhello\r\n0\r\n\r\n";
      const status = await rawRequest(
        bay.url,
        `POST ${route}/upload?path=raw/smuggled.bin HTTP/1.1\r\nHost: x\r\nX-Owner: alice\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
      );
      expect(status).toBe(400);
      expect((await download(route, "raw/smuggled.bin")).status).toBe(404);
    });
  });
}

/** Ship's temporary upload files left in a sandbox's /workspace. */
async function leftovers(sandboxId: string): Promise<string[]> {
  const r = await api(bay.url, "POST", `/v1/sandboxes/${sandboxId}/shell/exec`, { command: "ls -A /workspace" });
  expect(r.status).toBe(200);
  expect(r.body.exit_code).toBe(0);
  return String(r.body.output)
    .split("\n")
    .filter((n) => n.startsWith(".ship-upload-"));
}

test("a Ship sweeps upload temporaries a dead Ship left behind (review s41), once nothing can be writing them", async () => {
  const created = await api(bay.url, "POST", "/v1/sandboxes", {});
  const id = created.body.id as string;
  const sh = (command: string) => api(bay.url, "POST", `/v1/sandboxes/${id}/shell/exec`, { command });
  // What a Ship killed mid-upload leaves: one untouched for hours, and one as fresh as a live upload's.
  const made = await sh(
    "cd /workspace && printf x > .ship-upload-0123456789ab.tmp && touch -d '3 hours ago' .ship-upload-0123456789ab.tmp && printf y > .ship-upload-aaaaaaaaaaaa.tmp",
  );
  expect(made.status).toBe(200);
  expect(made.body.exit_code).toBe(0);
  expect(await leftovers(id)).toEqual([".ship-upload-0123456789ab.tmp", ".ship-upload-aaaaaaaaaaaa.tmp"]);
  expect((await api(bay.url, "POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
  // The next call starts a new Ship on the same workspace; it sweeps as it starts.
  let names: string[] = [];
  for (let i = 0; i < 50; i++) {
    names = await leftovers(id);
    if (!names.includes(".ship-upload-0123456789ab.tmp")) break;
    await Bun.sleep(100);
  }
  expect(names).toEqual([".ship-upload-aaaaaaaaaaaa.tmp"]);
  await api(bay.url, "DELETE", `/v1/sandboxes/${id}`);
});
