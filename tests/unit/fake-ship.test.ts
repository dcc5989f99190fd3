/**
 * The in-memory fake Ship's Python and shell are honest: what they support
 * answers as Python and bash would, everything else is refused naming the fake
 * (NotImplementedError, exit 127), never answered with a made-up result.
 */
import { describe, expect, test } from "bun:test";
import { PyError } from "../../src/bay/drivers/memory/fake-python-parse.ts";
import { FakePythonKernel } from "../../src/bay/drivers/memory/fake-python.ts";
import { runShell } from "../../src/bay/drivers/memory/fake-shell.ts";
import { BayError } from "../../src/bay/errors.ts";

/** A workspace of text files in a map, with the errors the volume gives. */
function workspace() {
  const files = new Map<string, string>();
  const sleep = (seconds: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, seconds * 1000);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    });
  const read = async (p: string) => {
    const text = files.get(p);
    if (text === undefined) throw new BayError("file_not_found", `file not found: ${p}`);
    return text;
  };
  const kernel = new FakePythonKernel({
    readText: (p, shown) =>
      read(p).catch(() => {
        throw new PyError("FileNotFoundError", `[Errno 2] No such file or directory: '${shown}'`);
      }),
    writeText: async (p, text) => void files.set(p, text),
    sleep,
  });
  const shellHost = {
    readText: read,
    writeText: async (p: string, text: string) => void files.set(p, text),
    list: async () => [...files.keys()],
    remove: async (p: string) => {
      if (!files.delete(p)) throw new BayError("file_not_found", `file not found: ${p}`);
    },
    sleep,
  };
  const sh = (command: string, env: Record<string, string> = {}) => runShell(shellHost, command, ".", env, new AbortController().signal);
  return { files, kernel, sh };
}

describe("fake Python", () => {
  test.each([
    ["1+1", "2\n"],
    ["x = 21\nx * 2", "42\n"],
    ["2**100", "1267650600228229401496703205376\n"],
    ["7/2; 7//2", "3\n"],
    ["-7 // 2", "-4\n"],
    ["0.1 + 0.2", "0.30000000000000004\n"],
    ["1e16", "1e+16\n"],
    ["1.5e-5", "1.5e-05\n"],
    ["'it''s'", "'its'\n"],
    ['"it\'s"', '"it\'s"\n'],
    ["print('a', 1, sep='-', end='!')", "a-1!"],
    ["1 == 1.0 and 'b' > 'a'", "True\n"],
    ["len('héllo')", "5\n"],
    ["'Ab'.upper()", "'AB'\n"],
    ["None", ""],
  ])("%j answers as Python does", async (code, output) => {
    const r = await workspace().kernel.exec(code, 10);
    expect(r).toMatchObject({ success: true, output, error: null });
  });

  test("state lives across cells; errors are tracebacks with Python's type and message", async () => {
    const { kernel } = workspace();
    expect((await kernel.exec("x = 1", 10)).execution_count).toBe(1);
    const r = await kernel.exec("x += 1\nx / 0", 10);
    expect(r).toMatchObject({ success: false, execution_count: 2 });
    expect(r.error).toContain("line 2\nZeroDivisionError: division by zero");
    expect((await kernel.exec("x", 10)).output).toBe("2\n");
    expect((await kernel.exec("y", 10)).error).toContain("NameError: name 'y' is not defined");
  });

  test("files under /workspace are the workspace's; a missing one is FileNotFoundError; elsewhere is refused", async () => {
    const { kernel, files } = workspace();
    expect((await kernel.exec("open('/workspace/a.txt','w').write('hi')", 10)).output).toBe("2\n");
    expect(files.get("a.txt")).toBe("hi");
    expect((await kernel.exec("print(open('a.txt').read())", 10)).output).toBe("hi\n");
    expect((await kernel.exec("open('/workspace/nope.txt')", 10)).error).toContain(
      "FileNotFoundError: [Errno 2] No such file or directory: '/workspace/nope.txt'",
    );
    expect((await kernel.exec("open('/etc/passwd')", 10)).error).toContain("NotImplementedError: a path outside /workspace");
  });

  test.each([
    "if True: pass",
    "for i in range(3): print(i)",
    "[1, 2]",
    "{'a': 1}",
    "x, y = 1, 2",
    "f'{1}'",
    "import os",
    "from time import sleep",
    "print(globals())",
    "1 < 2 < 3",
    "'a' + 1",
    "'a'.split(',')",
    "lambda: 1",
    "print('x', file=None)",
    "open('a.txt', 'rb')",
  ])("%j is refused as outside the subset, never answered wrongly", async (code) => {
    const r = await workspace().kernel.exec(code, 10);
    expect(r.success).toBe(false);
    expect(r.error).toContain("NotImplementedError:");
    expect(r.error).toContain("outside the in-memory fake Ship's Python subset");
  });

  test("a cell past its timeout answers Ship's timeout; time.sleep within it just waits", async () => {
    const { kernel } = workspace();
    expect((await kernel.exec("import time; time.sleep(0.01); 3", 10)).output).toBe("3\n");
    const late = await kernel.exec("import time; time.sleep(30)", 0.05).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(BayError);
    expect(late).toMatchObject({ code: "timeout", details: { timeout: 0.05 } });
  });
});

describe("fake shell", () => {
  test.each([
    ["echo hi > f.txt && cat f.txt", 0, "hi\n"],
    ["echo -n a; echo b", 0, "ab\n"],
    ["echo a >> f.txt; echo b >> f.txt; cat f.txt", 0, "a\nb\n"],
    ["false || echo fallback", 0, "fallback\n"],
    ["false && echo never", 1, ""],
    ['echo "$HOME" ${PWD} $MINE', 0, "/workspace /workspace mine\n"],
    ["echo x > gone.txt; rm gone.txt; ls", 0, ""],
    ["exit 3", 3, ""],
  ])("%j runs as bash would", async (command, exitCode, stdout) => {
    expect(await workspace().sh(command, { MINE: "mine" })).toMatchObject({ exitCode, stdout });
  });

  test("a missing file is bash's error; unknown programs are 127", async () => {
    const { sh } = workspace();
    expect(await sh("cat nope.txt")).toEqual({ exitCode: 1, stdout: "", stderr: "cat: nope.txt: No such file or directory\n" });
    const r = await sh("python3 -c 1");
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain("python3: command not found (the in-memory fake Ship's shell)");
  });

  test.each(["ls -la", "echo -e 'a\\nb'", "ls | wc -l", "cat *.txt", "echo $PATH", "echo $?", "echo $(pwd)", "sleep 1s", "cat f 2>&1"])(
    "%j is refused (127, naming the fake), never run half-way",
    async (command) => {
      const r = await workspace().sh(command);
      expect(r.exitCode).toBe(127);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("the in-memory fake Ship's shell does not support");
    },
  );
});
