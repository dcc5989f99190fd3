/**
 * Bay's E2B-compatible API with the official SDKs, unmodified (see e2b-sdk.test.ts):
 * @e2b/code-interpreter 2.8.0's runCode on Bay's kernels and code contexts, create-time
 * and per-run environment variables, and e2b 2.7.0 (`e2b-legacy`), which creates with
 * POST /sandboxes. Every SDK call runs under a watchdog.
 */
import { describe, expect, test } from "bun:test";
import { Sandbox as CodeSandbox } from "@e2b/code-interpreter";
import { Sandbox as LegacySandbox } from "e2b-legacy";
import { within } from "../support/within.ts";
import { created, useE2bBay } from "./support/e2b-sdk.ts";

useE2bBay();

describe("code interpreter (@e2b/code-interpreter 2.8.0)", () => {
  test("runCode: result value, stdout, errors with name and value, execution count", async () => {
    const sb = await within(60_000, "create", CodeSandbox.create());
    created.push(sb.sandboxId);
    const r = await within(120_000, "runCode", sb.runCode("print('hello')\nx = 21\nx * 2"));
    expect(r.logs.stdout).toEqual(["hello\n"]);
    expect(r.text).toBe("42");
    expect(r.error).toBeUndefined();
    const e = await within(60_000, "runCode error", sb.runCode("1/0"));
    expect(e.error?.name).toBe("ZeroDivisionError");
    expect(e.error?.value).toBe("division by zero");
    expect(e.error?.traceback).toContain("ZeroDivisionError");
    expect(e.executionCount).toBeGreaterThan(1);
  });

  test("runCode: a matplotlib figure comes back as a PNG (python-data template; the default image has no matplotlib)", async () => {
    const sb = await within(60_000, "create", CodeSandbox.create("python-data"));
    created.push(sb.sandboxId);
    const r = await within(
      180_000,
      "plot",
      sb.runCode("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"),
    );
    const png = r.results.find((x) => x.png)?.png;
    expect(png).toBeDefined();
    expect(Buffer.from(png!, "base64").subarray(1, 4).toString()).toBe("PNG");
  });
});

describe("code interpreter on Bay's code contexts (@e2b/code-interpreter 2.8.0)", () => {
  test("output streams while the code runs; JavaScript and TypeScript contexts keep their own state; create, list, restart, remove", async () => {
    const sb = await within(60_000, "create", CodeSandbox.create());
    created.push(sb.sandboxId);
    // onStdout before the run ends: the code prints, then waits for a file the test writes.
    const seen: string[] = [];
    const run = sb.runCode("import os, time\nprint('first', flush=True)\nwhile not os.path.exists('go'): time.sleep(0.05)\n'done'", {
      onStdout: (m) => void seen.push(m.line),
      timeoutMs: 120_000,
    });
    const until = Date.now() + 60_000;
    while (seen.length === 0 && Date.now() < until) await Bun.sleep(50);
    expect(seen).toEqual(["first\n"]);
    await within(30_000, "go", sb.files.write("go", ""));
    expect((await within(60_000, "run", run)).text).toBe("done");

    const js = await within(60_000, "js context", sb.createCodeContext({ language: "javascript" }));
    expect(js).toMatchObject({ language: "javascript", cwd: "/home/user" });
    expect((await within(60_000, "js set", sb.runCode("globalThis.n = 40; n + 2", { context: js }))).text).toBe("42");
    expect((await within(60_000, "js get", sb.runCode("n", { context: js }))).text).toBe("40");
    const jsErr = await within(60_000, "js error", sb.runCode("null.x", { context: js }));
    expect(jsErr.error?.name).toBe("TypeError");
    const ts = await within(60_000, "ts context", sb.createCodeContext({ language: "typescript", cwd: "/home/user" }));
    expect((await within(60_000, "ts", sb.runCode("const m: number = 6; m * 7", { context: ts }))).text).toBe("42");
    expect((await within(60_000, "ts language", sb.runCode("console.log('hi from ts')", { language: "ts" }))).logs.stdout).toEqual([
      "hi from ts\n",
    ]);

    const listed = await within(10_000, "list", sb.listCodeContexts());
    expect(listed.map((c) => c.id)).toEqual(expect.arrayContaining([js.id, ts.id]));
    await within(60_000, "restart", sb.restartCodeContext(js));
    expect((await within(60_000, "after restart", sb.runCode("typeof n", { context: js }))).text).toMatch(/^"?undefined"?$/);
    await within(10_000, "remove", sb.removeCodeContext(ts.id));
    expect((await sb.listCodeContexts()).map((c) => c.id)).not.toContain(ts.id);
    await expect(within(10_000, "removed", sb.runCode("1", { context: ts }))).rejects.toThrow(/not found/i);
  });
});

describe("environment variables (e2b 2.51.0, @e2b/code-interpreter 2.8.0)", () => {
  test("a create's envs reach every kernel, command and terminal; a runCode's envs hold for that run only", async () => {
    const sb = await within(60_000, "create", CodeSandbox.create({ envs: { BAY_SANDBOX_VAR: "from-create", BAY_SHARED: "create" } }));
    created.push(sb.sandboxId);
    const py = (code: string, opts = {}) => within(60_000, code, sb.runCode(code, opts));
    expect((await py("import os\nos.environ['BAY_SANDBOX_VAR'] + '|' + str(os.environ.get('BAY_RUN_VAR'))")).text).toBe("from-create|None");
    const run = await py("os.environ['BAY_RUN_VAR'] + '|' + os.environ['BAY_SHARED']", { envs: { BAY_RUN_VAR: "run", BAY_SHARED: "run" } });
    expect(run.text).toBe("run|run");
    expect((await py("str(os.environ.get('BAY_RUN_VAR')) + '|' + os.environ['BAY_SHARED']")).text).toBe("None|create");
    // A cell's own change to a sandbox variable stays, as in E2B (the kernel takes them once).
    await py("os.environ['BAY_SHARED'] = 'changed'");
    expect((await py("os.environ['BAY_SHARED']")).text).toBe("changed");
    for (const language of ["js", "ts"]) {
      const r = await within(
        60_000,
        language,
        sb.runCode("process.env.BAY_SANDBOX_VAR + '|' + process.env.BAY_RUN_VAR", { language, envs: { BAY_RUN_VAR: language } }),
      );
      expect(r.text).toMatch(new RegExp(`^"?from-create\\|${language}"?$`));
    }
    const cmd = await within(60_000, "command", sb.commands.run('printf %s "$BAY_SANDBOX_VAR"'));
    expect(cmd.stdout).toBe("from-create");

    await within(30_000, "makeDir", sb.files.makeDir("/home/user/pty-here"));
    let out = "";
    const dec = new TextDecoder();
    const t = await within(
      60_000,
      "pty.create",
      sb.pty.create({
        cols: 80,
        rows: 24,
        cwd: "/home/user/pty-here",
        envs: { BAY_PTY_VAR: "pty" },
        timeoutMs: 120_000,
        onData: (d) => void (out += dec.decode(d, { stream: true })),
      }),
    );
    // The quotes split the marker, so the echoed command line never matches.
    await within(
      10_000,
      "input",
      sb.pty.sendInput(t.pid, new TextEncoder().encode('echo "EN""V[$PWD|$BAY_PTY_VAR|$BAY_SANDBOX_VAR]"; exit\n')),
    );
    const until = Date.now() + 30_000;
    while (!/ENV\[/.test(out) && Date.now() < until) await Bun.sleep(50);
    expect(/ENV\[([^\]]*)\]/.exec(out)?.[1]).toMatch(/\/pty-here\|pty\|from-create$/);
    await within(
      30_000,
      "pty wait",
      t.wait().catch((e) => e),
    );
  });

  test("bad variables are refused with E2B's error shape, and the sandbox runs on", async () => {
    const sb = await within(60_000, "create", CodeSandbox.create());
    created.push(sb.sandboxId);
    await expect(within(60_000, "bad env", sb.runCode("1", { envs: { "A=B": "x" } }))).rejects.toThrow(/400/);
    await expect(
      within(60_000, "bad pty env", sb.pty.create({ cols: 80, rows: 24, envs: { "": "x" }, onData: () => {} })),
    ).rejects.toThrow();
    expect((await within(60_000, "after", sb.runCode("1 + 1"))).text).toBe("2");
    // Each sandbox's variables are its own (Bay keeps them per owner and sandbox once read).
    expect((await within(60_000, "own env", sb.runCode("import os\nstr(os.environ.get('BAY_SANDBOX_VAR'))"))).text).toBe("None");
  });
});

describe("legacy generation (e2b 2.7.0: POST /sandboxes, POST /sandboxes/{id}/connect)", () => {
  test("create, run, files, connect, kill", async () => {
    const sb = await within(60_000, "legacy create", LegacySandbox.create({ metadata: { gen: "legacy" } }));
    created.push(sb.sandboxId);
    expect((await within(60_000, "legacy run", sb.commands.run("echo legacy"))).stdout).toBe("legacy\n");
    await within(30_000, "legacy write", sb.files.write("/home/user/l.txt", "old sdk"));
    const again = await within(30_000, "legacy connect", LegacySandbox.connect(sb.sandboxId));
    expect(await within(30_000, "legacy read", again.files.read("/home/user/l.txt"))).toBe("old sdk");
    const listed = await within(10_000, "legacy list", LegacySandbox.list({ query: { metadata: { gen: "legacy" } } }).nextItems());
    expect(listed.map((s) => s.sandboxId)).toEqual([sb.sandboxId]);
    expect(await within(10_000, "legacy kill", sb.kill()).then(() => true)).toBe(true);
    expect(
      await within(
        10_000,
        "legacy info after kill",
        LegacySandbox.getInfo(sb.sandboxId).catch(() => null),
      ),
    ).toBeNull();
  });
});
