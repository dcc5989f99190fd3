/**
 * `bay sandbox cp` (src/bay/cli/copy.ts) run as a user runs it, a `bay` process
 * against a Bay served over HTTP on real Docker: a binary file in and out byte
 * for byte, a directory as the destination on either side; and what must fail
 * cleanly, leaving nothing behind: a path out of /workspace, a missing file,
 * another owner's sandbox, a local directory or missing file as the source,
 * two local or two remote operands.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestBay } from "../support/harness.ts";
import { chunkOf, sh, withSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";
import { CLI, cliEnv } from "./support/cli.ts";

let t: TestBay;
let served: ServedBay;
let dir = "";
servedE2eBay((bay, s) => {
  t = bay;
  served = s;
});
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "bay-cli-cp-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

async function cp(src: string, dst: string, owner = "alice") {
  const proc = Bun.spawn(["bun", CLI, "sandbox", "cp", src, dst], {
    env: cliEnv(served, owner),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("bay sandbox cp", () => {
  test("a 3 MiB binary file in and back out, byte for byte; directories as destinations take the file's name", async () => {
    await withSandbox(t, async (id) => {
      const bytes = new Uint8Array(3 * 1024 * 1024 + 7);
      for (let i = 0; i < 3; i++) bytes.set(chunkOf(i, 1024 * 1024), i * 1024 * 1024);
      const local = join(dir, "in.bin");
      writeFileSync(local, bytes);

      expect(await cp(local, `${id}:data/copy.bin`)).toEqual({ code: 0, stdout: "", stderr: "" });
      expect((await cp(local, `${id}:data/`)).code).toBe(0);
      const listed = await sh(t, id, { command: "sha256sum data/copy.bin data/in.bin | cut -c1-64" });
      expect(listed.body.output).toBe(`${sha(bytes)}\n${sha(bytes)}\n`);

      const out = join(dir, "out.bin");
      expect(await cp(`${id}:data/copy.bin`, out)).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(sha(readFileSync(out))).toBe(sha(bytes));
      const into = join(dir, "into");
      mkdirSync(into);
      expect((await cp(`${id}:data/in.bin`, into)).code).toBe(0);
      expect(sha(readFileSync(join(into, "in.bin")))).toBe(sha(bytes));
    });
  }, 120_000);

  test("an existing local file is replaced whole by a copy that succeeds, and left as it was by one that fails", async () => {
    await withSandbox(t, async (id) => {
      expect((await sh(t, id, { command: "printf new > n.txt" })).status).toBe(200);
      const local = join(dir, "replace.txt");
      writeFileSync(local, "old contents");
      chmodSync(local, 0o600);
      // A copy that fails leaves it as it was.
      expect((await cp(`${id}:missing.txt`, local)).code).toBe(1);
      expect(readFileSync(local, "utf8")).toBe("old contents");
      expect((await cp(`${id}:n.txt`, local)).code).toBe(0);
      expect(readFileSync(local, "utf8")).toBe("new");
      // It keeps its permissions, as with cp.
      expect(statSync(local).mode & 0o777).toBe(0o600);
      expect(readdirSync(dir).filter((f) => f.includes("bay-part"))).toEqual([]);
    });
  }, 120_000);
});

describe("bay sandbox cp, refused", () => {
  test("paths out of /workspace, a missing file and another owner's sandbox fail with Bay's error and leave nothing behind", async () => {
    await withSandbox(t, async (id) => {
      const local = join(dir, "small.txt");
      writeFileSync(local, "x");
      const before = readdirSync(dir).sort();
      for (const [src, dst, owner, code] of [
        [local, `${id}:../etc/evil`, "alice", "invalid_path"],
        [local, `${id}:/etc/evil`, "alice", "invalid_path"],
        [`${id}:../../etc/passwd`, join(dir, "passwd"), "alice", "invalid_path"],
        [`${id}:nope.txt`, join(dir, "nope.txt"), "alice", "not_found"],
        [local, `${id}:stolen.txt`, "mallory", "not_found"],
        [`${id}:small.txt`, join(dir, "stolen.txt"), "mallory", "not_found"],
      ] as const) {
        const r = await cp(src, dst, owner);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(code);
      }
      // No partial or stray file on this machine, and nothing written in the sandbox (but the
      // IPython profile its kernel makes in its home, /workspace, as it starts).
      expect(readdirSync(dir).sort()).toEqual(before);
      const written = await sh(t, id, { command: "find /workspace -mindepth 1 -not -path '/workspace/.ipython*'" });
      expect(written.body.output).toBe("");
    });
  }, 120_000);

  test("a missing or non-regular local source, a remote directory, and two local or two remote operands", async () => {
    const missing = await cp(join(dir, "absent"), "sandbox-x:a");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no such file");
    const directory = await cp(dir, "sandbox-x:a");
    expect(directory.code).toBe(1);
    expect(directory.stderr).toContain("not a regular file");
    const remoteDir = await cp("sandbox-x:data/", join(dir, "d"));
    expect(remoteDir.code).toBe(1);
    expect(existsSync(join(dir, "d"))).toBe(false);
    for (const [a, b] of [
      [join(dir, "a"), join(dir, "b")],
      ["sandbox-x:a", "sandbox-y:b"],
    ]) {
      const r = await cp(a!, b!);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("exactly one of SRC and DST is ID:PATH");
    }
  }, 60_000);
});
