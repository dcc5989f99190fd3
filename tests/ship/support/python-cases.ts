import { expect, test } from "bun:test";
import { eventually, type ShipClient } from "./caller.ts";
import { MAX_QUEUED_EXECS } from "../../../src/ship/kernel/python-kernel.ts";

const ANSI = /\x1b\[/;

/**
 * Starts an exec that holds the kernel until `release()` (marker-file handshake).
 * release() lets it finish and waits for its answer.
 */
async function holdKernel(client: ShipClient, tag: string): Promise<{ release(): Promise<void> }> {
  const started = `py-hold-started-${tag}`;
  const go = `py-hold-go-${tag}`;
  const running = client.python(
    `import os, time\nopen(${JSON.stringify(started)}, "w").close()\n` +
      `for _ in range(3000):\n    if os.path.exists(${JSON.stringify(go)}):\n        break\n    time.sleep(0.01)`,
    60,
  );
  await eventually(async () => ((await client.json("GET", `/filesystem/files?path=${started}`)).status === 200 ? true : undefined));
  return {
    async release() {
      await client.json("PUT", "/filesystem/files", { path: go, content: "" });
      await running;
      await client.shell(`rm -f ${started} ${go}`);
    },
  };
}

/** Python kernel behaviours shared by every Ship target. */
export function pythonCases(client: () => ShipClient, opts: { matplotlib: boolean }): void {
  test("python: state persists and the last expression is returned", async () => {
    const set = await client().python("x = 20\nprint('hello')");
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ success: true, error: null, output: "hello\n" });
    const got = await client().python("x * 2 + 2");
    expect(got.body.success).toBe(true);
    expect(got.body.output.trim()).toBe("42");
    expect(got.body.data).toEqual([{ type: "execute_result", data: { "text/plain": "42" } }]);
    expect(typeof got.body.execution_count).toBe("number");
    expect(got.body.kernel_restarted).toBe(false);
  });

  test("python: 1+1 gives 2 and subprocess output is captured", async () => {
    const res = await client().python("import os\nos.system('echo from-child')\n1+1");
    expect(res.body.output).toBe("from-child\n2\n");
  });

  test("python: an exception gives success false and a plain traceback", async () => {
    const res = await client().python("def boom():\n    raise ValueError('bad value')\nboom()");
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(false);
    expect(res.body.error).toContain("ValueError");
    expect(res.body.error).toContain("bad value");
    expect(res.body.error).toContain("boom()");
    expect(res.body.error).not.toMatch(ANSI);
    const syntax = await client().python("def f(:");
    expect(syntax.body.success).toBe(false);
    expect(syntax.body.error).toContain("SyntaxError");
  });

  test("python: timeout interrupts with 504 and keeps variables", async () => {
    await client().python("kept = 'still here'");
    const res = await client().python("import time\nprint('before', flush=True)\nwhile True:\n    time.sleep(0.05)", 1);
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe("timeout");
    expect(res.body.error.details.timeout).toBe(1);
    expect(res.body.error.details.output).toContain("before");
    const after = await client().python("kept");
    expect(after.body.output.trim()).toBe("'still here'");
    expect(after.body.kernel_restarted).toBe(false);
  });

  test("python: concurrent execs run one at a time", async () => {
    // Handshake through marker files: the first exec announces it is running, then
    // holds the kernel until the test releases it, after the second exec was sent.
    // Run concurrently, the second would fail with a NameError.
    const tag = crypto.randomUUID().slice(0, 8);
    const started = `py-started-${tag}`;
    const go = `py-go-${tag}`;
    const name = `q_${tag}`;
    try {
      const first = client().python(
        `import os, time\nopen(${JSON.stringify(started)}, "w").close()\n` +
          `for _ in range(2000):\n    if os.path.exists(${JSON.stringify(go)}):\n        break\n    time.sleep(0.01)\n` +
          `${name} = 5 if os.path.exists(${JSON.stringify(go)}) else -1`,
      );
      await eventually(async () => ((await client().json("GET", `/filesystem/files?path=${started}`)).status === 200 ? true : undefined));
      const second = client().python(`${name} * 2`);
      expect((await client().json("PUT", "/filesystem/files", { path: go, content: "" })).status).toBe(200);
      expect((await first).body.success).toBe(true);
      const after = await second;
      expect(after.body.success).toBe(true);
      expect(after.body.output.trim()).toBe("10");
    } finally {
      await client().shell(`rm -f ${started} ${go}`);
    }
  });

  test("python: a killed kernel is restarted and says so", async () => {
    await client().python("doomed = 1");
    const res = await client().python("import os\nos.kill(os.getpid(), 9)");
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(false);
    expect(res.body.kernel_restarted).toBe(true);
    const next = await client().python("'doomed' in dir()");
    expect(next.body.success).toBe(true);
    expect(next.body.output.trim()).toBe("False");
    const health = await client().json("GET", "/health");
    expect(health.body.kernel).toBe("ready");
  });

  test("python: huge output is capped and the kernel stays usable", async () => {
    const res = await client().python("import sys\nfor _ in range(3000):\n    sys.stdout.write('y' * 1000 + '\\n')");
    expect(res.body.success).toBe(true);
    expect(res.body.output.length).toBeLessThanOrEqual(1024 * 1024 + 100);
    expect(res.body.output.length).toBeGreaterThan(500_000);
    expect((await client().python("7*6")).body.output.trim()).toBe("42");
  });

  test("python: a forked child that keeps the pipes does not wedge the kernel", async () => {
    const start = await client().python("import multiprocessing, time\nmultiprocessing.Process(target=time.sleep, args=(600,)).start()");
    expect(start.body.success).toBe(true);
    const died = await client().python("import os\nos._exit(1)", 5);
    expect(died.status).toBe(200);
    expect(died.body.success).toBe(false);
    expect(died.body.kernel_restarted).toBe(true);
    const next = await client().python("1+1");
    expect(next.body.output.trim()).toBe("2");
    expect(next.body.kernel_restarted).toBe(false);
    expect((await client().json("GET", "/health")).body.kernel).toBe("ready");
  });

  test("python: an os.fork() child leaving the cell exits instead of serving requests", async () => {
    const fork = await client().python("import os\nparent = os.getpid()\nchild = os.fork()\n'child' if child == 0 else 'parent'");
    expect(fork.body.output.trim()).toBe("'parent'");
    for (let i = 0; i < 4; i++) {
      const res = await client().python("os.getpid() == parent", 10);
      expect(res.body.output.trim()).toBe("True");
    }
    const reaped = await client().python("os.waitpid(child, 0)[1]", 10);
    expect(reaped.status).toBe(200);
    expect(reaped.body.output.trim()).toBe("0");
  });

  test("python: a huge result or traceback is capped and Ship stays up", async () => {
    const cap = 1024 * 1024;
    const big = await client().python('"x" * (20 * 10**6)', 120);
    expect(big.status).toBe(200);
    expect(big.body.success).toBe(true);
    expect(big.body.truncated).toBe(true);
    expect(big.body.output.length).toBeLessThanOrEqual(cap + 100);
    expect(JSON.stringify(big.body.data).length).toBeLessThanOrEqual(cap + 1000);
    expect((await client().json("GET", "/health")).status).toBe(200);
    const raised = await client().python('raise ValueError("x" * 10**7)', 120);
    expect(raised.status).toBe(200);
    expect(raised.body.success).toBe(false);
    expect(raised.body.truncated).toBe(true);
    expect(raised.body.error).toContain("ValueError");
    expect(raised.body.error.length).toBeLessThanOrEqual(cap + 200);
    expect((await client().json("GET", "/health")).status).toBe(200);
    const after = await client().python("1+1");
    expect(after.body.output.trim()).toBe("2");
    expect(after.body.truncated).toBe(false);
  });

  test("python: closing or redirecting fds 1/2 only affects that cell", async () => {
    for (const breakIt of [
      "import os\nos.close(1)\nos.close(2)",
      "import os\nos.dup2(os.open(os.devnull, os.O_WRONLY), 1)\nos.dup2(1, 2)",
      "import sys\nsys.stdout.close()\nsys.stderr = open(__import__('os').devnull, 'w')",
    ]) {
      const broken = await client().python(breakIt);
      expect(broken.status).toBe(200);
      const res = await client().python("import sys, os\nprint('hi')\nprint('err', file=sys.stderr)\nos.system('echo sub')");
      expect(res.body.success).toBe(true);
      expect(res.body.output).toBe("hi\nerr\nsub\n0\n");
    }
  });

  test("python: history works in memory; the kernel adds no thread and no history file", async () => {
    const tag = `hist-${crypto.randomUUID().slice(0, 8)}`;
    await client().python(JSON.stringify(tag));
    const hist = await client().python("get_ipython().run_line_magic('history', '-n -l 2')");
    expect(hist.body.output).toContain(tag);
    const searched = await client().python(`get_ipython().run_line_magic('history', '-g ${tag}')`);
    expect(searched.body.output).toContain(tag);
    const threads = await client().python("import threading\nsorted(t.name for t in threading.enumerate())");
    expect(threads.body.output.trim()).toBe("['MainThread', 'ship-capture']");
    const files = await client().shell("find . -name 'history.sqlite*' | wc -l");
    expect(files.body.output.trim()).toBe("0");
  });

  test("python: a kernel replaced after a timeout reports kernel_restarted once", async () => {
    const res = await client().python("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(100)", 2);
    expect(res.status).toBe(504);
    expect(res.body.error.details.kernel_restarted).toBe(true);
    const next = await client().python("1+1");
    expect(next.body.output.trim()).toBe("2");
    expect(next.body.kernel_restarted).toBe(false);
  });

  test("python: a cell that breaks a built-in the driver runs on gets a fresh kernel at once, with the reason", async () => {
    // json (the protocol's writer) calls isinstance: before, the capture thread died
    // on it and the cell, and every one after, waited for its timeout.
    const broken = await client().python("import builtins\nbuiltins.isinstance = None", 20);
    expect(broken.status).toBe(200); // answered, not a 504 at the timeout
    expect(broken.body.success).toBe(false);
    expect(broken.body.kernel_restarted).toBe(true);
    expect(broken.body.error).toContain("exit code 70");
    expect(broken.body.error).toContain("the kernel's own code no longer works");
    const next = await client().python("isinstance(1, int)");
    expect(next.body.output.trim()).toBe("True");
    expect(next.body.kernel_restarted).toBe(false);
  });

  test("python: a cached .pyc planted for the driver's capture module never runs in a later kernel", async () => {
    // The capture module is compiled from the source Ship wrote, never imported: a cell
    // that writes an unchecked-hash .pyc (PEP 552) where the import system would look
    // for it must not get its code into the next kernel (a restart, a new context).
    const plant = [
      "import importlib.util, os, py_compile",
      "src = '/tmp/ship-kernel-capture-%d.py' % os.getppid()",
      "assert os.path.exists(src), src",
      "evil = os.path.join(os.getcwd(), 'evil-capture.py')",
      "open(evil, 'w').write(open(src).read() + \"\\nopen(os.path.join(os.getcwd(), 'PLANTED_BY_PYC'), 'a').write('ran')\\n\")",
      "target = importlib.util.cache_from_source(src)",
      "py_compile.compile(evil, cfile=target, dfile=src, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)",
      "os.unlink(evil)",
      "target",
    ].join("\n");
    const planted = await client().python(plant);
    expect(planted.body.success).toBe(true);
    const pyc = planted.body.output.trim().replace(/^'|'$/g, "");
    try {
      const died = await client().python("import os\nos._exit(0)");
      expect(died.body.kernel_restarted).toBe(true);
      const after = await client().python("import os\nos.path.exists('PLANTED_BY_PYC')");
      expect(after.body.output.trim()).toBe("False");
    } finally {
      await client().shell(`rm -f '${pyc}' PLANTED_BY_PYC`);
    }
  });

  test("python: a module dropped next to the driver script cannot break kernel start", async () => {
    const where = await client().python("import os, sys\nos.path.dirname(os.path.abspath(sys.argv[0]))");
    const dir = JSON.parse(where.body.output.trim().replace(/^'|'$/g, '"'));
    expect(typeof dir).toBe("string");
    const stray = `${dir}/traceback.py`;
    try {
      await client().python(`open(${JSON.stringify(stray)}, "w").write("x = 1\\n")`);
      const died = await client().python("import os\nos._exit(0)");
      expect(died.body.kernel_restarted).toBe(true);
      const next = await client().python("1+1");
      expect(next.status).toBe(200);
      expect(next.body.output.trim()).toBe("2");
    } finally {
      await client().shell(`rm -f '${stray}'`);
    }
  });

  test("python: an exec whose client gave up while queued is not run", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const held = await holdKernel(client(), tag);
    const abort = new AbortController();
    const abandoned = client()
      .call("/ipython/exec", {
        method: "POST",
        body: JSON.stringify({ code: `ran_${tag} = True` }),
        headers: { "content-type": "application/json" },
        signal: abort.signal,
      })
      .then((r) => r.text())
      .catch(() => null);
    await Bun.sleep(300);
    abort.abort();
    await Bun.sleep(300);
    await held.release();
    await abandoned;
    const after = await client().python(`'ran_${tag}' in dir()`);
    expect(after.body.output.trim()).toBe("False");
  });

  test("python: too many queued execs give quota_exceeded", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const held = await holdKernel(client(), tag);
    let sent: Array<Promise<{ status: number; body: any }>> = [];
    let settled = 0;
    try {
      // One more than the queue holds, all at once. While the kernel is held nothing queued can
      // finish, so the first answer is the refusal, whichever request arrived last.
      sent = Array.from({ length: MAX_QUEUED_EXECS + 1 }, (_, i) =>
        client()
          .python(`${i}`)
          .finally(() => settled++),
      );
      await eventually(async () => (settled > 0 ? true : undefined), 60_000);
    } finally {
      await held.release();
    }
    const results = await Promise.all(sent);
    const refused = results.filter((r) => r.status === 429);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.body.error.code).toBe("quota_exceeded");
    // Every other one ran, with its own code.
    for (const [i, r] of results.entries()) if (r.status !== 429) expect([i, r.status, r.body.output.trim()]).toEqual([i, 200, String(i)]);
  });

  test("python: display() of HTML comes back as display_data", async () => {
    const res = await client().python("from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))");
    expect(res.body.data).toEqual([{ type: "display_data", data: expect.objectContaining({ "text/html": "<b>hi</b>" }) }]);
  });

  test("python: bad body is a validation_error", async () => {
    const missing = await client().json("POST", "/ipython/exec", { timeout: 3 });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe("validation_error");
    // Past a day (E2B's runCode may ask up to that; Bay's own API up to 300 s).
    const tooLong = await client().json("POST", "/ipython/exec", { code: "1", timeout: 86_401 });
    expect(tooLong.status).toBe(400);
    const long = await client().json("POST", "/ipython/exec", { code: "6*7", timeout: 3600 });
    expect([long.status, long.body.output.trim()]).toEqual([200, "42"]);
    const badJson = await client().call("/ipython/exec", {
      method: "POST",
      body: "{nope",
      headers: { "content-type": "application/json" },
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as any).error.code).toBe("validation_error");
  });

  if (opts.matplotlib) {
    test("python: a matplotlib figure comes back as image/png", async () => {
      const res = await client().python("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()");
      expect(res.body.success).toBe(true);
      const png = res.body.data.find((d: any) => d.data["image/png"]);
      expect(png?.type).toBe("display_data");
      const bytes = Buffer.from(png.data["image/png"], "base64");
      expect(bytes.subarray(1, 4).toString()).toBe("PNG");
    });
  } else {
    test("python: matplotlib is absent from this image (tested on bay-ship-data)", async () => {
      const res = await client().python("import matplotlib");
      expect(res.body.success).toBe(false);
      expect(res.body.error).toContain("ModuleNotFoundError");
    });
  }
}
