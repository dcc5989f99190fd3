import { expect, test } from "bun:test";
import { zContext } from "../../../src/protocol/ship/index.ts";
import type { ShipClient } from "./caller.ts";

async function newContext(client: ShipClient, body: Record<string, unknown>): Promise<string> {
  const res = await client.json("POST", "/contexts", body);
  if (res.status !== 201) throw new Error(`create context answered ${res.status}: ${JSON.stringify(res.body)}`);
  expect(zContext.safeParse(res.body).success).toBe(true);
  return res.body.id;
}

const drop = (client: ShipClient, id: string) => client.json("DELETE", `/contexts/${id}`).catch(() => null);

/** Code contexts on every Ship target; `maxContexts` is the target's SHIP_MAX_CONTEXTS. */
export function contextCases(client: () => ShipClient, opts: { maxContexts: number }): void {
  test("contexts: Python's default context is listed, and python exec and code exec share it", async () => {
    const list = await client().json("GET", "/contexts");
    expect(list.status).toBe(200);
    const python = list.body.items.find((c: any) => c.id === "ctx-default-python");
    expect(python).toMatchObject({ language: "python", cwd: ".", default: true });
    await client().python("shared_by_default = 5");
    const viaCode = await client().code({ code: "shared_by_default * 2" });
    expect(viaCode.body.output).toBe("10\n");
    const viaId = await client().code({ code: "shared_by_default", context_id: "ctx-default-python", language: "python" });
    expect(viaId.body.output).toBe("5\n");
  });

  test("contexts: JavaScript and TypeScript keep state across cells in their default contexts", async () => {
    expect(
      (await client().code({ language: "javascript", code: "const base = 20\nfunction twice(x) { return 2 * x }" })).body.success,
    ).toBe(true);
    const js = await client().code({ language: "javascript", code: "twice(base) + 2" });
    expect(js.body).toMatchObject({ success: true, output: "42\n", kernel_restarted: false });
    expect(js.body.data).toEqual([{ type: "execute_result", data: { "text/plain": "42" } }]);
    expect((await client().code({ language: "typescript", code: "let typed: number = 3\ninterface P { x: number }" })).body.success).toBe(
      true,
    );
    expect((await client().code({ language: "typescript", code: "const p: P = { x: typed }\np.x + 1" })).body.output).toBe("4\n");
    // Separate contexts: the TypeScript one does not see the JavaScript one's names.
    const apart = await client().code({ language: "typescript", code: "typeof base" });
    expect(apart.body.output).toBe('"undefined"\n');
    const list = await client().json("GET", "/contexts");
    const defaults = list.body.items.filter((c: any) => c.default).map((c: any) => c.id);
    expect(defaults).toEqual(expect.arrayContaining(["ctx-default-python", "ctx-default-javascript", "ctx-default-typescript"]));
  });

  test("contexts: two Python contexts do not share state, each has its cwd, and the default is untouched", async () => {
    await client().shell("mkdir -p ctx-sub");
    const a = await newContext(client(), { language: "python" });
    const b = await newContext(client(), { language: "python", cwd: "ctx-sub" });
    try {
      expect((await client().code({ context_id: a, code: "only_in_a = 1" })).body.success).toBe(true);
      expect((await client().code({ context_id: b, code: "'only_in_a' in dir()" })).body.output).toBe("False\n");
      expect((await client().code({ code: "'only_in_a' in dir()" })).body.output).toBe("False\n");
      expect((await client().code({ context_id: a, code: "'only_in_a' in dir()" })).body.output).toBe("True\n");
      const cwd = await client().code({ context_id: b, code: "import os\nos.path.basename(os.getcwd())" });
      expect(cwd.body.output).toBe("'ctx-sub'\n");
      const got = await client().json("GET", `/contexts/${b}`);
      expect(got.body).toMatchObject({ id: b, language: "python", cwd: "ctx-sub", default: false, status: "ready" });
      // Each context is its own process.
      const pids = await Promise.all([a, b].map((id) => client().code({ context_id: id, code: "import os\nos.getpid()" })));
      expect(pids[0]!.body.output).not.toBe(pids[1]!.body.output);
    } finally {
      await drop(client(), a);
      await drop(client(), b);
    }
  });

  test("contexts: one context's crash leaves the others and Ship alone", async () => {
    const a = await newContext(client(), { language: "python" });
    const js = await newContext(client(), { language: "javascript" });
    try {
      await client().python("survivor = 'default'");
      await client().code({ context_id: js, code: "var survivorJs = 'js'" });
      await client().code({ context_id: a, code: "doomed = 1" });
      const crash = await client().code({ context_id: a, code: "import os\nos.kill(os.getpid(), 9)" });
      expect(crash.status).toBe(200);
      expect(crash.body).toMatchObject({ success: false, kernel_restarted: true });
      expect((await client().code({ context_id: a, code: "'doomed' in dir()" })).body.output).toBe("False\n");
      expect((await client().python("survivor")).body.output).toBe("'default'\n");
      expect((await client().code({ context_id: js, code: "survivorJs" })).body.output).toBe('"js"\n');
      const jsCrash = await client().code({ context_id: js, code: "process.kill(process.pid, 'SIGKILL')" });
      expect(jsCrash.body).toMatchObject({ success: false, kernel_restarted: true });
      expect((await client().python("survivor")).body.output).toBe("'default'\n");
      expect((await client().json("GET", "/health")).status).toBe(200);
    } finally {
      await drop(client(), a);
      await drop(client(), js);
    }
  });

  test("contexts: the JS kernel survives an endless loop stopped by its timeout, state kept", async () => {
    const js = await newContext(client(), { language: "typescript" });
    try {
      await client().code({ context_id: js, code: "const kept: string = 'here'" });
      const looped = await client().code({ context_id: js, code: "console.log('looping')\nwhile (true) {}", timeout: 1 });
      expect(looped.status).toBe(504);
      expect(looped.body.error.code).toBe("timeout");
      expect(looped.body.error.details).toMatchObject({ timeout: 1, kernel_restarted: false });
      expect(looped.body.error.details.output).toContain("looping");
      const after = await client().code({ context_id: js, code: "kept" });
      expect(after.body).toMatchObject({ success: true, output: '"here"\n', kernel_restarted: false });
    } finally {
      await drop(client(), js);
    }
  });

  test("contexts: a JS cell that makes arrays thenable does not make later array values wait for the timeout", async () => {
    const js = await newContext(client(), { language: "javascript" });
    try {
      const set = await client().code({ context_id: js, code: "Array.prototype.then = function () {}\n'set'", timeout: 10 });
      expect(set.body).toMatchObject({ success: true, output: '"set"\n' });
      const array = await client().code({ context_id: js, code: "[1, 2, 3]", timeout: 10 });
      expect([array.status, array.body.output, array.body.kernel_restarted]).toEqual([200, "[ 1, 2, 3 ]\n", false]);
      // A genuine promise as the value is still awaited.
      const promise = await client().code({ context_id: js, code: "new Promise((r) => setTimeout(() => r(7), 5))", timeout: 10 });
      expect(promise.body).toMatchObject({ success: true, output: "7\n", kernel_restarted: false });
    } finally {
      await drop(client(), js);
    }
  });

  test("contexts: restart gives a fresh kernel and says nothing about it afterwards; delete ends it", async () => {
    const a = await newContext(client(), { language: "python" });
    await client().code({ context_id: a, code: "before_restart = 1" });
    const restarted = await client().json("POST", `/contexts/${a}/restart`);
    expect(restarted.status).toBe(200);
    expect(restarted.body).toMatchObject({ id: a, status: "ready" });
    const after = await client().code({ context_id: a, code: "'before_restart' in dir()" });
    expect(after.body).toMatchObject({ output: "False\n", kernel_restarted: false });
    const pid = (await client().code({ context_id: a, code: "import os\nos.getpid()" })).body.output.trim();
    expect((await client().json("DELETE", `/contexts/${a}`)).status).toBe(204);
    expect((await client().json("GET", `/contexts/${a}`)).status).toBe(404);
    const gone = await client().code({ context_id: a, code: "1" });
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe("not_found");
    // Its process is gone too: killed at once, reaped (no longer a zombie that kill -0 still finds) within moments.
    let alive = "";
    for (let i = 0; i < 50 && alive !== "gone"; i++) {
      if (i > 0) await Bun.sleep(100);
      alive = (await client().shell(`kill -0 ${pid} 2>/dev/null && echo alive || echo gone`)).body.output.trim();
    }
    expect(alive).toBe("gone");
    // A default context is restarted, never deleted.
    const refused = await client().json("DELETE", "/contexts/ctx-default-python");
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("conflict");
    await client().python("default_before = 1");
    expect((await client().json("POST", "/contexts/ctx-default-python/restart")).status).toBe(200);
    expect((await client().python("'default_before' in dir()")).body).toMatchObject({ output: "False\n", kernel_restarted: false });
  });

  test(`contexts: at most ${opts.maxContexts} can be created (429), and deleting one frees its place`, async () => {
    const made: string[] = [];
    try {
      for (let i = 0; i < opts.maxContexts; i++) made.push(await newContext(client(), { language: i % 2 ? "javascript" : "python" }));
      const over = await client().json("POST", "/contexts", { language: "python" });
      expect(over.status).toBe(429);
      expect(over.body.error.code).toBe("quota_exceeded");
      expect(over.body.error.details.max_contexts).toBe(opts.maxContexts);
      // Default contexts do not count: they still answer.
      expect((await client().code({ code: "1 + 1" })).body.output).toBe("2\n");
      expect((await client().json("DELETE", `/contexts/${made.pop()}`)).status).toBe(204);
      made.push(await newContext(client(), { language: "typescript" }));
    } finally {
      for (const id of made) await drop(client(), id);
    }
  });

  test("contexts: bad input is refused with the right code", async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ language: "ruby" }, 400, "validation_error"],
      [{}, 400, "validation_error"],
      [{ language: "python", cwd: "../outside" }, 400, "invalid_path"],
      [{ language: "python", cwd: "/etc" }, 400, "invalid_path"],
      [{ language: "python", cwd: "no-such-dir" }, 404, "file_not_found"],
      [{ language: "python", extra: 1 }, 400, "validation_error"],
    ];
    for (const [body, status, code] of cases) {
      const res = await client().json("POST", "/contexts", body);
      expect([JSON.stringify(body), res.status, res.body.error?.code]).toEqual([JSON.stringify(body), status, code]);
    }
    const fileCwd = await client().shell("touch ctx-a-file");
    expect(fileCwd.status).toBe(200);
    const notDir = await client().json("POST", "/contexts", { language: "python", cwd: "ctx-a-file" });
    expect([notDir.status, notDir.body.error.code]).toEqual([400, "validation_error"]);
    const mismatch = await client().code({ code: "1", context_id: "ctx-default-python", language: "javascript" });
    expect([mismatch.status, mismatch.body.error.code, mismatch.body.error.details.issues[0].path]).toEqual([
      400,
      "validation_error",
      "json.language",
    ]);
    expect((await client().code({ code: "1", context_id: "ctx-missing" })).status).toBe(404);
    expect((await client().code({ code: "1", language: "cobol" } as never)).status).toBe(400);
    expect((await client().json("POST", "/contexts/ctx-missing/restart")).status).toBe(404);
    expect((await client().json("DELETE", "/contexts/ctx-missing")).status).toBe(404);
  });
}
