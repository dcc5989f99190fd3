/**
 * Code in a sandbox swaps a directory of its workspace with a symlink to `/`
 * (renameat2 RENAME_EXCHANGE in a tight loop) while the workspace routes read under
 * it. Those routes move bytes through the engine's archive API on a helper container,
 * and the engine resolves symlinks inside the helper's root at transfer time, after
 * Bay's walk refused them: on a helper made from the Ship image the race read that
 * image's /etc/passwd (review s53). Now the helper's root is empty and read-only, so
 * every read answers the workspace's own file, the symlink's invalid_path or
 * file_not_found, and never another file's bytes.
 */
import { expect, test } from "bun:test";
import { pack } from "tar-stream";
import { escapedWrite } from "../../src/bay/drivers/docker/archive-races.ts";
import { ARCHIVE_ROOT_IMAGE, ensureArchiveRoot } from "../../src/bay/drivers/docker/archive-root.ts";
import { createArchiveHelper, helperName, removeHelper } from "../../src/bay/drivers/docker/archive.ts";
import { LabelCodec } from "../../src/bay/drivers/docker/labels.ts";
import type { TestBay } from "../support/harness.ts";
import { docker, SHIP_DATA_IMAGE, sh } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay(
  (bay) => {
    t = bay;
  },
  { config: { limits: { rate_limit_per_minute: 1_000_000 } } },
);

const RACE_SECONDS = 15;

const RACER = `
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("d/etc", exist_ok=True)
open("d/etc/passwd", "w").write("INSIDE\\n")
os.symlink("/", "dl")
end = time.time() + ${RACE_SECONDS + 5}
while time.time() < end:
    libc.renameat2(-100, b"d", -100, b"dl", 2)  # AT_FDCWD, RENAME_EXCHANGE
`;

test("a read racing a symlink swap answers the workspace's own file or a refusal, never a file from outside it", async () => {
  const ws = await t.json("POST", "/v1/workspaces", { body: {} });
  expect(ws.status).toBe(201);
  const sb = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws.body.id } });
  expect(sb.status).toBe(201);
  try {
    expect(
      (await t.json("PUT", `/v1/sandboxes/${sb.body.id}/filesystem/files`, { body: { path: "racer.py", content: RACER } })).status,
    ).toBe(200);
    expect((await sh(t, sb.body.id, { command: "python3 racer.py", background: true })).status).toBe(200);
    await Bun.sleep(1000);
    const answers = new Map<string, number>();
    const foreign: string[] = [];
    const deadline = Date.now() + RACE_SECONDS * 1000;
    const reader = async (route: "files" | "download") => {
      while (Date.now() < deadline) {
        const res = await t.call("GET", `/v1/workspaces/${ws.body.id}/filesystem/${route}?path=d/etc/passwd`);
        const text = await res.text();
        let answer = String(res.status);
        if (res.status === 200) {
          const content = route === "files" ? JSON.parse(text).content : text;
          if (content !== "INSIDE\n") foreign.push(content.slice(0, 200));
        } else {
          answer += ` ${JSON.parse(text).error.code}`;
        }
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
      }
    };
    await Promise.all([reader("files"), reader("files"), reader("download"), reader("download")]);
    expect(foreign).toEqual([]);
    // Each answer is the file, the symlink's refusal (also after three attempts that each met it changing), its
    // absence, or (rarely, the engine's stat failing under the race without saying why) internal_error.
    const kinds = [...answers.keys()];
    expect(kinds.filter((k) => !["200", "400 invalid_path", "404 file_not_found", "500 internal_error"].includes(k))).toEqual([]);
    // The race ran: the swap was seen both ways.
    expect(kinds).toContain("400 invalid_path");
  } finally {
    await t.call("DELETE", `/v1/sandboxes/${sb.body.id}`);
    await t.call("DELETE", `/v1/workspaces/${ws.body.id}`);
  }
}, 120_000);

/** A tar of one file, as the engine's archive API takes it. */
function oneFile(name: string, content: string) {
  const p = pack();
  p.entry({ name, uid: 1000, gid: 1000 }, content);
  p.finalize();
  return p as unknown as NodeJS.ReadableStream;
}

test("a write the engine unpacked through a symlink shows in the helper's changes (so Bay refuses it); one into the volume does not", async () => {
  const signal = () => AbortSignal.timeout(30_000);
  const volume = `bay-test-escape-${crypto.randomUUID()}`;
  await docker.createVolume({ Name: volume });
  // The volume holds `a -> /`, as code in a sandbox leaves it at the instant of the race.
  const setup = await docker.run(SHIP_DATA_IMAGE, ["sh", "-c", "ln -s / /workspace/a"], process.stdout, {
    Entrypoint: [],
    HostConfig: { AutoRemove: true, Mounts: [{ Type: "volume", Source: volume, Target: "/workspace" }] },
  });
  expect(setup[0].StatusCode).toBe(0);
  await ensureArchiveRoot(docker, signal());
  const name = helperName();
  const labels = { owner: "tester", workspace_id: "ws-escape", instance_id: "test-escape" };
  const helper = await createArchiveHelper(docker, new LabelCodec("bay."), { name: volume, labels }, { name, signal: signal() });
  try {
    await docker.getContainer(helper).putArchive(oneFile("kept.txt", "in the volume"), { path: "/workspace" });
    expect(await escapedWrite(docker, helper, signal())).toBe(false);
    await docker.getContainer(helper).putArchive(oneFile("a/etc/escaped.txt", "through the link"), { path: "/workspace" });
    expect(await escapedWrite(docker, helper, signal())).toBe(true);
  } finally {
    await removeHelper(docker, name, signal());
    await docker.getVolume(volume).remove();
  }
}, 60_000);

test("an image by the archive root's name that Bay did not make (another image's layers) is replaced, not trusted", async () => {
  const signal = () => AbortSignal.timeout(60_000);
  await ensureArchiveRoot(docker, signal());
  const made = (await docker.getImage(ARCHIVE_ROOT_IMAGE).inspect()).RootFS.Layers;
  expect(made).toHaveLength(1);
  const [repo = "", tag = ""] = ARCHIVE_ROOT_IMAGE.split(":");
  await docker.getImage(SHIP_DATA_IMAGE).tag({ repo, tag });
  try {
    expect((await docker.getImage(ARCHIVE_ROOT_IMAGE).inspect()).RootFS.Layers).not.toEqual(made);
  } finally {
    await ensureArchiveRoot(docker, signal());
  }
  expect((await docker.getImage(ARCHIVE_ROOT_IMAGE).inspect()).RootFS.Layers).toEqual(made);
}, 120_000);
