import { expect, test } from "bun:test";
import type { ShipClient } from "./caller.ts";

/** An odd value: quotes, a newline, a backslash, code-looking text and non-ASCII must arrive byte for byte. */
const ODD = `it's "quoted"\\n'; import os; os.system("touch pwned") #\nline two ✓ $HOME`;

/** Environment variables of kernel runs (`env`: this run only; `base_env`: kept) on every Ship target. */
export function envCases(client: () => ShipClient): void {
  test("env: python sees a run's variables in the code and its subprocesses, and they are put back after it", async () => {
    await client().python("import os, subprocess\nos.environ['BAY_ENV_KEEP'] = 'before'");
    const run = await client().json("POST", "/ipython/exec", {
      code: "print(os.environ['BAY_ENV_NEW']); print(os.environ['BAY_ENV_KEEP']); print(subprocess.check_output(['sh', '-c', 'printf %s \"$BAY_ENV_NEW\"'], text=True))",
      env: { BAY_ENV_NEW: "fresh", BAY_ENV_KEEP: "during" },
    });
    expect(run.status).toBe(200);
    expect(run.body.output).toBe("fresh\nduring\nfresh\n");
    const after = await client().python("(os.environ.get('BAY_ENV_NEW'), os.environ.get('BAY_ENV_KEEP'))");
    expect(after.body.output).toBe("(None, 'before')\n");
  });

  test("env: a run that fails or is interrupted still has its variables put back", async () => {
    const failed = await client().json("POST", "/ipython/exec", { code: "raise ValueError('boom')", env: { BAY_ENV_FAIL: "x" } });
    expect(failed.body.success).toBe(false);
    const timedOut = await client().json("POST", "/ipython/exec", {
      code: "import time\nwhile True: time.sleep(0.05)",
      env: { BAY_ENV_SLOW: "y" },
      timeout: 1,
    });
    expect(timedOut.body.error.code).toBe("timeout");
    const after = await client().python("import os\n[k for k in ('BAY_ENV_FAIL', 'BAY_ENV_SLOW') if k in os.environ]");
    expect(after.body.output).toBe("[]\n");
  });

  test("env: values arrive byte for byte, never as code", async () => {
    const run = await client().json("POST", "/ipython/exec", {
      code: "import os\nprint(os.environ['BAY_ENV_ODD'], end='')",
      env: { BAY_ENV_ODD: ODD },
    });
    expect(run.body.output).toBe(ODD);
    const check = await client().python(`import os\nos.environ.get('BAY_ENV_ODD') is None and not os.path.exists('pwned')`);
    expect(check.body.output).toBe("True\n");
    const js = await client().code({ language: "javascript", code: "process.env.BAY_ENV_ODD", env: { BAY_ENV_ODD: ODD } } as never);
    expect(js.body.data[0].data["text/plain"]).toBe(JSON.stringify(ODD));
  });

  test("base_env: kept by the kernel, taken once (a cell's change stays), taken again when it changes", async () => {
    const base = { BAY_BASE_A: "one", BAY_BASE_B: "two" };
    const ctx = await client().json("POST", "/contexts", { language: "python" });
    expect(ctx.status).toBe(201);
    const id = ctx.body.id as string;
    try {
      const first = await client().json("POST", "/code/exec", {
        context_id: id,
        code: "import os\nos.environ['BAY_BASE_A']",
        base_env: base,
      });
      expect(first.body.output).toBe("'one'\n");
      await client().json("POST", "/code/exec", { context_id: id, code: "os.environ['BAY_BASE_A'] = 'mine'", base_env: base });
      const kept = await client().json("POST", "/code/exec", { context_id: id, code: "os.environ['BAY_BASE_A']", base_env: base });
      expect(kept.body.output).toBe("'mine'\n");
      // Without base_env in a request, what the kernel has stays.
      expect((await client().code({ context_id: id, code: "os.environ['BAY_BASE_B']" })).body.output).toBe("'two'\n");
      const changed = await client().json("POST", "/code/exec", {
        context_id: id,
        code: "(os.environ['BAY_BASE_A'], os.environ['BAY_BASE_B'])",
        base_env: { ...base, BAY_BASE_B: "three" },
      });
      expect(changed.body.output).toBe("('one', 'three')\n");
      // A run's own variable over a base one is put back to the base value.
      const over = await client().json("POST", "/code/exec", {
        context_id: id,
        code: "os.environ['BAY_BASE_B']",
        base_env: { ...base, BAY_BASE_B: "three" },
        env: { BAY_BASE_B: "run" },
      });
      expect(over.body.output).toBe("'run'\n");
      expect((await client().code({ context_id: id, code: "os.environ['BAY_BASE_B']" })).body.output).toBe("'three'\n");
      // A restarted kernel gets them back at its first run.
      expect((await client().json("POST", `/contexts/${id}/restart`)).status).toBe(200);
      const again = await client().json("POST", "/code/exec", {
        context_id: id,
        code: "import os\nos.environ.get('BAY_BASE_A')",
        base_env: { ...base, BAY_BASE_B: "three" },
      });
      expect(again.body.output).toBe("'one'\n");
    } finally {
      await client().json("DELETE", `/contexts/${id}`);
    }
  });

  test("env: JavaScript and TypeScript kernels take run and base variables like Python's", async () => {
    for (const language of ["javascript", "typescript"]) {
      const run = await client().json("POST", "/code/exec", {
        language,
        // node:child_process passes process.env on (Bun.spawn without `env` passes the kernel's start environment).
        code: "[process.env.BAY_JS_RUN, process.env.BAY_JS_BASE, require('node:child_process').execSync('printf %s \"$BAY_JS_RUN\"').toString()].join('|')",
        env: { BAY_JS_RUN: `run-${language}` },
        base_env: { BAY_JS_BASE: "base" },
      });
      expect(run.body.data[0].data["text/plain"]).toBe(JSON.stringify(`run-${language}|base|run-${language}`));
      const after = await client().json("POST", "/code/exec", {
        language,
        code: "String(process.env.BAY_JS_RUN) + '|' + process.env.BAY_JS_BASE",
        base_env: { BAY_JS_BASE: "base" },
      });
      expect(after.body.data[0].data["text/plain"]).toBe(JSON.stringify("undefined|base"));
    }
  });

  test("env: names the JS object has by inheritance (constructor, toString) are put back as absent, not as its functions", async () => {
    const names = { constructor: "c", toString: "t", valueOf: "v", hasOwnProperty: "h" };
    const run = await client().json("POST", "/code/exec", {
      language: "javascript",
      code: "Object.keys(process.env).filter((k) => ['constructor', 'toString', 'valueOf', 'hasOwnProperty'].includes(k)).length",
      env: names,
    });
    expect(run.body.output).toBe("4\n");
    const after = await client().json("POST", "/code/exec", {
      language: "javascript",
      code: "Object.keys(process.env).filter((k) => k in { constructor: 1, toString: 1, valueOf: 1, hasOwnProperty: 1 }).length + '|' + String(process.env).length",
    });
    expect(after.body.output).toBe('"0|15"\n');
  });

  test("env: a variable named __proto__ is dropped by validation (as from every JSON object Bay reads), never set", async () => {
    const run = await client().call("/ipython/exec", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"code":"import os\\n(\'__proto__\' in os.environ, os.environ.get(\'BAY_NEXT\'))","env":{"__proto__":"x","BAY_NEXT":"y"}}',
    });
    expect((await run.json()).output).toBe("(False, 'y')\n");
  });

  test("python: large cells sent back to back arrive whole and in order (requests are read in chunks)", async () => {
    const cell = (i: number) => ({ code: `s = '${String(i).repeat(700_000)}'\n(len(s), s[:1])`, timeout: 60 });
    const runs = await Promise.all([0, 1, 2].map((i) => client().json("POST", "/ipython/exec", cell(i))));
    expect(runs.map((r) => r.body.output)).toEqual(["(700000, '0')\n", "(700000, '1')\n", "(700000, '2')\n"]);
  });

  test("env: bad names and values are refused before anything runs", async () => {
    const bad: Array<Record<string, unknown>> = [
      { env: { "A=B": "x" } },
      { env: { "": "x" } },
      { env: { "A\u0000B": "x" } },
      { env: { A: "x\u0000y" } },
      { env: { A: "x\ud800" } },
      { env: { BIG: "x".repeat(64 * 1024) } },
      { base_env: { "\udfff": "x" } },
      { base_env: { "=": "x" } },
      { env: Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`V${i}`, "x"])) },
      { env: { A: 1 } },
      { env: "A=1" },
    ];
    for (const extra of bad) {
      for (const path of ["/ipython/exec", "/code/exec"]) {
        const res = await client().json("POST", path, { code: "open('refused-env-ran', 'w').close()", ...extra });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe("validation_error");
      }
    }
    expect((await client().python("import os\nos.path.exists('refused-env-ran')")).body.output).toBe("False\n");
  });
}
