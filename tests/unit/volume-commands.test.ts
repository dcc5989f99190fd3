/**
 * Reading the Docker data plane's helper commands: listing records split anywhere
 * across chunks, a flood of output kept to what a listing returns, malformed or
 * overlong records dropped, each walk exit code as its data-plane error, and
 * helper stderr kept out of what a client sees.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listCommand, removeCommand, usageCommand } from "../../src/bay/drivers/docker/volume-commands.ts";
import { BayError } from "../../src/bay/errors.ts";

const record = (type: string, size: number, name: string, mtime = "1700000000.25") => Buffer.from(`${type} ${size} ${mtime} ${name}\0`);

/** Feeds `bytes` in pieces of `size` (so records straddle chunks). */
function feed(onStdout: (chunk: Buffer) => void, bytes: Buffer, size: number): void {
  for (let at = 0; at < bytes.byteLength; at += size) onStdout(bytes.subarray(at, at + size));
}

function errorOf(fn: () => unknown): BayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BayError);
    return err as BayError;
  }
  throw new Error("expected a BayError");
}

const ok = { exitCode: 0, stderr: "" };

describe("listCommand", () => {
  test("records split anywhere across chunks become sorted entries with kinds, sizes and times", () => {
    const out = Buffer.concat([
      record("f", 12, "b.txt"),
      record("d", 4096, "sub dir"),
      record("l", 4, "link"),
      record("p", 0, "pipe"),
      record("f", 3, "new\nline"),
      record("f", 1, "a.txt", "1700000001"),
    ]);
    for (const size of [1, 2, 7, 64, out.byteLength]) {
      const cmd = listCommand("d", 100);
      feed(cmd.onStdout, out, size);
      expect(cmd.outcome(ok)).toEqual({
        entries: [
          { name: "a.txt", kind: "file", size: 1, modifiedAt: 1700000001000 },
          { name: "b.txt", kind: "file", size: 12, modifiedAt: 1700000000250 },
          { name: "link", kind: "symlink", size: 4, modifiedAt: 1700000000250 },
          { name: "new\nline", kind: "file", size: 3, modifiedAt: 1700000000250 },
          { name: "pipe", kind: "other", size: 0, modifiedAt: 1700000000250 },
          { name: "sub dir", kind: "directory", size: 0, modifiedAt: 1700000000250 },
        ],
        truncated: false,
      });
    }
  });

  test("a flood of records keeps only one more than a listing returns; truncated says so", () => {
    const cmd = listCommand(".", 3);
    const one = Buffer.concat(Array.from({ length: 1000 }, (_, i) => record("f", i, `f${String(i).padStart(4, "0")}`)));
    for (let round = 0; round < 200; round++) cmd.onStdout(one);
    const { entries, truncated } = cmd.outcome(ok);
    expect(truncated).toBe(true);
    expect(entries.map((e) => e.name)).toEqual(["f0000", "f0001", "f0002"]);
  });

  test("an overlong or malformed record is dropped, the next one is kept", () => {
    const cmd = listCommand(".", 10);
    cmd.onStdout(Buffer.concat([Buffer.alloc(300_000, 0x61), Buffer.from("\0")]));
    cmd.onStdout(Buffer.from("garbage without fields\0"));
    cmd.onStdout(record("f", 1, "kept"));
    expect(cmd.outcome(ok).entries.map((e) => e.name)).toEqual(["kept"]);
  });

  test("each walk exit code is its data-plane error, naming the segment at fault", () => {
    const cases: Array<[number, string, string, string | undefined]> = [
      [10, "", "file_not_found", undefined],
      [11, "at=2\n", "invalid_path", "symlink"],
      [12, "at=1\n", "invalid_path", "a parent is not a directory"],
      [13, "", "validation_error", undefined],
      [14, "", "invalid_path", "permission denied"],
      [16, "", "invalid_path", "permission denied"],
    ];
    for (const [exitCode, stderr, code, reason] of cases) {
      const err = errorOf(() => listCommand("a/b/c", 10).outcome({ exitCode, stderr }));
      expect({ exitCode, code: err.code as string, reason: err.details.reason }).toEqual({ exitCode, code, reason });
    }
    expect(errorOf(() => listCommand("a/b/c", 10).outcome({ exitCode: 11, stderr: "at=2" })).message).toContain("a/b is a symlink");
    expect(errorOf(() => removeCommand("a/b/c").outcome({ exitCode: 12, stderr: "at=1" })).message).toContain("a is not a directory");
    // A tree delete that could not finish says the rest is in place, as Ship does.
    expect(errorOf(() => removeCommand("a/b/c").outcome({ exitCode: 16, stderr: "" })).details).toEqual({
      path: "a/b/c",
      reason: "permission denied",
      remaining_at: "a/b/c",
    });
  });

  test("a time before 1970 is a negative one, kept (it was dropped, hiding the file from a listing)", () => {
    const cmd = listCommand(".", 10);
    cmd.onStdout(record("f", 1, "old", "-315619200"));
    cmd.onStdout(record("f", 1, "older", "-315619200.5"));
    expect(cmd.outcome(ok).entries).toEqual([
      { name: "old", kind: "file", size: 1, modifiedAt: -315619200000 },
      { name: "older", kind: "file", size: 1, modifiedAt: -315619200500 },
    ]);
  });

  test("any other failure is internal_error; the helper's own words go to the log (internal), not to the client", () => {
    const err = errorOf(() => removeCommand("x").outcome({ exitCode: 1, stderr: "rm: cannot remove '/workspace/x/y': Permission denied" }));
    expect(err.code).toBe("internal_error");
    expect(err.message).toBe("workspace delete failed");
    expect(JSON.stringify(err.details)).not.toContain("Permission");
    expect(err.internal).toMatchObject({ helper_exit_code: 1, helper_stderr: expect.stringContaining("Permission denied") });
  });
});

/**
 * What the usage command answers for a helper that said `stderr` and exited `exitCode`: its
 * stderr streamed in small pieces (lines and characters split across them), the result's
 * own `stderr` its first 16 KiB as the helper keeps them.
 */
function usageAnswer(stderr: string, exitCode: number, piece = 5): unknown {
  const cmd = usageCommand();
  const bytes = Buffer.from(stderr);
  for (let at = 0; at < bytes.byteLength; at += piece) cmd.onStderr?.(bytes.subarray(at, at + piece));
  return cmd.outcome({ exitCode, stderr: bytes.subarray(0, 16 * 1024).toString("utf8") });
}

describe("usageCommand", () => {
  test("reads du's total, even when du exits 1", () => {
    const cmd = usageCommand();
    cmd.onStdout(Buffer.from("123456\t/workspace\n"));
    expect(cmd.outcome({ exitCode: 1, stderr: "du: cannot read directory" })).toBe(123456);
  });

  test("a workspace that kept changing under every du is 409 conflict (changing), its paths kept out of the answer", () => {
    const err = errorOf(() =>
      usageAnswer(
        "du: cannot read directory '/workspace/a/bb': No such file or directory\ndu: /workspace/a/bb: No such file or directory\n",
        17,
      ),
    );
    expect({ code: err.code, reason: err.details.reason }).toEqual({ code: "conflict", reason: "changing" });
    expect(JSON.stringify(err.details)).not.toContain("/workspace");
  });

  test("only du's races inside /workspace are 409; any other failure without a total stays internal", () => {
    const race = "conflict";
    const fault = "internal_error";
    // [why, the helper's stderr, its exit code, what it answers]
    const cases: Array<[string, string, number, typeof race | typeof fault]> = [
      [
        "a directory moved below itself as du went: a cycle",
        "du: WARNING: Circular directory structure.\nThis almost certainly means that you have a corrupted file system.\nNOTIFY YOUR SYSTEM MANAGER.\nThe following directory is part of the cycle:\n  /workspace/churn/a3/b\n",
        17,
        race,
      ],
      ["fts's own words, the commonest", "du: fts_read failed: /workspace/deep/y11/l3: No such file or directory\n", 17, race],
      ["a quoted path", "du: fts_read failed: '/workspace/sp ace/x58/l3': No such file or directory\n", 17, race],
      [
        "a shell-quoted name, then fts",
        "du: cannot access '/workspace/a'$'\\n''b': Not a directory\ndu: fts_read failed: /workspace/a/l3: No such file or directory\n",
        17,
        race,
      ],
      ["du's assertion on its levels", "du: src/du.c:638: process_file: Assertion 'level == prev_level - 1' failed.\n", 17, race],
      ["du aborted without a word (the script says how it ended)", "Aborted\n\ndu exit 134\n", 17, race],
      ["du crashed without a word", "\ndu exit 139\n", 17, race],
      ["a last line without its newline", "du: fts_read failed: /workspace/a/l3: No such file or directory", 17, race],
      ["a name in UTF-8, split across pieces", "du: cannot access '/workspace/été/ß': No such file or directory\n", 17, race],
      ["du failed without a word, not crashed", "\ndu exit 1\n", 17, fault],
      ["a crash after a fault of the volume", "du: cannot read directory '/workspace/a': Input/output error\ndu exit 134\n", 17, fault],
      [
        "one fault line among race lines",
        "du: cannot access '/workspace/a': No such file or directory\ndu: fts_read failed: /workspace: Input/output error\n",
        17,
        fault,
      ],
      ["the volume's own fault", "du: cannot read directory '/workspace/a': Input/output error\n", 17, fault],
      [
        "a directory its user may not read, beside a race: neither (review s84 L1)",
        "du: cannot read directory '/workspace/locked': Permission denied\ndu: fts_read failed: /workspace/a/l3: No such file or directory\n",
        17,
        race,
      ],
      [
        "a directory it may not read, and no race",
        "du: cannot read directory '/workspace/locked': Permission denied\ndu exit 1\n",
        17,
        fault,
      ],
      ["the workspace itself unreadable", "du: cannot read directory '/workspace': Permission denied\n", 17, fault],
      ["an entry start with nothing after the workspace's /", "du: cannot access '/workspace/: No such file or directory\n", 17, fault],
      [
        "a quoted path naming nothing after the workspace's / (review s85 I1)",
        "du: cannot access '/workspace/': No such file or directory\n",
        17,
        fault,
      ],
      [
        "a race in each attempt",
        `${[0, 1, 2].map((i) => `du attempt ${i}\ndu: fts_read failed: /workspace/a/l${i}: No such file or directory\n`).join("")}du exit 1\n`,
        17,
        race,
      ],
      [
        "an early race, then attempts that died without a word (review s85 L1)",
        "du attempt 0\ndu: fts_read failed: /workspace/a/b: No such file or directory\ndu attempt 1\nKilled\ndu attempt 2\nKilled\ndu exit 137\n",
        17,
        fault,
      ],
      [
        "a fault in an early attempt, races after it",
        "du attempt 0\ndu: cannot read directory '/workspace/a': Input/output error\ndu attempt 1\ndu: /workspace/b: No such file or directory\ndu exit 1\n",
        17,
        fault,
      ],
      [
        "a last attempt that crashed, after races",
        "du attempt 0\ndu: /workspace/b: No such file or directory\ndu attempt 1\nAborted\ndu exit 134\n",
        17,
        race,
      ],
      ["the workspace root itself gone", "du: cannot access '/workspace': No such file or directory\n", 17, fault],
      ["a path outside /workspace", "du: /workspacex/a: No such file or directory\n", 17, fault],
      ["nothing said", "\n", 17, fault],
      ["race words, but not the script's exit (17) for 'no total'", "du: /workspace/a/bb: No such file or directory", 1, fault],
    ];
    for (const [why, stderr, exitCode, code] of cases) {
      expect({ why, code: errorOf(() => usageAnswer(stderr, exitCode)).code }).toEqual({ why, code });
    }
  });

  test("every line counts, not only the first bytes the helper keeps: a fault behind a flood of race lines is still a fault", () => {
    const flood = "du: cannot access '/workspace/churn/a/b/c': No such file or directory\n".repeat(2000); // ~140 KiB
    const fault = "du: cannot read directory '/workspace/a': Input/output error\n";
    const cases: Array<[string, string, "conflict" | "internal_error"]> = [
      ["race lines only, far past the cap", `${flood}du exit 1\n`, "conflict"],
      ["a fault after them", `${flood}${fault}du exit 1\n`, "internal_error"],
      ["a fault before them", `${fault}${flood}du exit 1\n`, "internal_error"],
      ["a line of 100 KiB outside the workspace", `du: ${"x".repeat(100 * 1024)}: No such file or directory\n${flood}`, "internal_error"],
      // du's walk goes as deep as the tree: a race 270 levels down is a line of 68 KiB (review s84 M1).
      [
        "a race line of a 200 KiB path",
        `du: cannot access '/workspace/${"d/".repeat(100 * 1024)}x': No such file or directory\n`,
        "conflict",
      ],
      [
        "a fault line of a 200 KiB path",
        `du: cannot read directory '/workspace/${"d/".repeat(100 * 1024)}': Input/output error\n${flood}`,
        "internal_error",
      ],
      // Many of the assertion's words in one line: judged in linear time, and a fault (review s84 H1).
      ["a line full of the assertion's words", `du: ${": Assertion x".repeat(20_000)}: No such file\n`, "internal_error"],
    ];
    for (const [why, stderr, code] of cases)
      for (const piece of [1, 4096, 1 << 20])
        expect({ why, piece, code: errorOf(() => usageAnswer(stderr, 17, piece)).code }).toEqual({ why, piece, code });
  });

  test("the helper's script tries du again while it prints no total, and prints only the total", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bay-usage-"));
    try {
      // A du that gives up twice (as GNU du does when a directory is moved under it), then totals with complaints before.
      writeFileSync(
        join(dir, "du"),
        `#!/bin/sh\nn=$(cat ${dir}/count 2>/dev/null || echo 0); echo $((n+1)) > ${dir}/count\necho "du: cannot access '$3/x': No such file or directory" >&2\nif [ "$n" -lt "$FAILS" ]; then echo "du: $3/x: No such file or directory" >&2; exit 1; fi\nprintf '4096\\t%s\\n' "$3"; exit 1\n`,
        { mode: 0o755 },
      );
      const run = async (fails: number) => {
        rmSync(join(dir, "count"), { force: true });
        const argv = usageCommand().argv;
        const p = Bun.spawn(argv, { env: { PATH: `${dir}:/usr/bin:/bin`, FAILS: String(fails) }, stdout: "pipe", stderr: "pipe" });
        const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        const cmd = usageCommand();
        cmd.onStdout(Buffer.from(stdout));
        cmd.onStderr?.(Buffer.from(stderr));
        return { stdout, exitCode, stderr, attempts: Number(readFileSync(join(dir, "count"), "utf8")), cmd };
      };
      const twice = await run(2);
      expect({ stdout: twice.stdout, exitCode: twice.exitCode, attempts: twice.attempts }).toEqual({
        stdout: "4096\t/workspace\n",
        exitCode: 0,
        attempts: 3,
      });
      expect(twice.cmd.outcome({ exitCode: twice.exitCode, stderr: twice.stderr })).toBe(4096);
      const always = await run(99);
      expect({ stdout: always.stdout, exitCode: always.exitCode, attempts: always.attempts }).toEqual({
        stdout: "",
        exitCode: 17,
        attempts: 3,
      });
      expect(errorOf(() => always.cmd.outcome({ exitCode: always.exitCode, stderr: always.stderr })).code).toBe("conflict");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a flood of output is not kept, and without a total it is internal_error", () => {
    const cmd = usageCommand();
    for (let i = 0; i < 1000; i++) cmd.onStdout(Buffer.alloc(64 * 1024, 0x78));
    expect(errorOf(() => cmd.outcome(ok)).code).toBe("internal_error");
  });
});
