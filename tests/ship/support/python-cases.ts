import { expect, test } from "bun:test";
import { eventually, type ShipClient } from "./caller.ts";

const ANSI = /\x1b\[/;

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

  test("python: display() of HTML comes back as display_data", async () => {
    const res = await client().python("from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))");
    expect(res.body.data).toEqual([
      { type: "display_data", data: expect.objectContaining({ "text/html": "<b>hi</b>" }) },
    ]);
  });

  test("python: bad body is a validation_error", async () => {
    const missing = await client().json("POST", "/ipython/exec", { timeout: 3 });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe("validation_error");
    const tooLong = await client().json("POST", "/ipython/exec", { code: "1", timeout: 301 });
    expect(tooLong.status).toBe(400);
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
