/**
 * Code contexts through Bay on real Docker with the real Ship image: Python,
 * JavaScript and TypeScript kernels side by side in one sandbox, each its own
 * process; profiles name their languages and a cap; a context's crash or memory
 * blow-up leaves the others and the sandbox's runtime alone; contexts count in
 * the pids limit and are lost when compute stops. Prints the memory of an idle
 * JS context. (What is refused is in contexts-refusals.test.ts.)
 */
import { describe, expect, test } from "bun:test";
import { zContextList, zErrorBody } from "../../src/bay/api/generated/index.ts";
import type { TestBay } from "../support/harness.ts";
import { pollUntil } from "../support/harness.ts";
import { CGROUP, catCgroup, containersOf, profiles, py, SHIP_IMAGE, sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import { codeExec, newContext as createContext } from "./support/contexts.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), {
  config: {
    profiles: profiles(
      { id: "python-default", image: SHIP_IMAGE },
      { id: "two-contexts", image: SHIP_IMAGE, max_contexts: 2 },
      { id: "python-only", image: SHIP_IMAGE, languages: ["python"] },
      { id: "small", image: SHIP_IMAGE, memory_mb: 512 },
      // Ship, tini and the default Python kernel take about 8 of these; a JS context about 5 (its threads).
      { id: "few-pids", image: SHIP_IMAGE, pids_limit: 32, max_contexts: 16 },
    ),
  },
});

const code = (id: string, body: Record<string, unknown>, owner?: string) => codeExec(t, id, body, owner);
const newContext = (id: string, body: Record<string, unknown>) => createContext(t, id, body);

/** Resident memory of a process in the sandbox, in MiB (ps, as the sandbox user). */
async function rssMiB(id: string, pid: string): Promise<number> {
  const ps = await sh(t, id, { command: `ps -o rss= -p ${pid}` });
  return Number(ps.body.output.trim()) / 1024;
}

/**
 * Python that parks threads in the kernel until `pids.current` reaches `target`
 * (each thread is one pid of the sandbox's cgroup); `_hold.set()` lets them go.
 */
const PIN_PIDS = (target: number) =>
  [
    "import os, threading",
    "def _pids():",
    `    for _p in ${JSON.stringify(CGROUP.pidsCurrent)}:`,
    "        if os.path.exists(_p): return int(open(_p).read())",
    "_hold = threading.Event()",
    "_held = []",
    `while _pids() < ${target}:`,
    "    _held.append(threading.Thread(target=_hold.wait, daemon=True)); _held[-1].start()",
    "(len(_held), _pids())",
  ].join("\n");

describe("code contexts through Bay", () => {
  test("profiles advertise their languages and context cap", async () => {
    const list = await t.json("GET", "/v1/profiles");
    const byId = Object.fromEntries(list.body.items.map((p: any) => [p.id, p]));
    expect(byId["python-default"]).toMatchObject({ languages: ["python", "javascript", "typescript"], max_contexts: 8 });
    expect(byId["two-contexts"].max_contexts).toBe(2);
    expect(byId["python-only"].languages).toEqual(["python"]);
  });

  test("state across cells in each language, two Python contexts apart, list/get/restart/delete", async () => {
    await withSandbox(t, async (id) => {
      // Default contexts: code/exec with a language, python/exec shares Python's.
      expect((await py(t, id, "shared = 'py'")).status).toBe(200);
      expect((await code(id, { code: "shared" })).body.output).toBe("'py'\n");
      expect((await code(id, { language: "javascript", code: "let n = 40\nconst add = (a) => a + n" })).body.success).toBe(true);
      expect((await code(id, { language: "javascript", code: "add(2)" })).body.output).toBe("42\n");
      expect((await code(id, { language: "typescript", code: "type T = { v: number }\nconst t1: T = { v: 7 }" })).body.success).toBe(true);
      expect((await code(id, { language: "typescript", code: "t1.v * 6" })).body.output).toBe("42\n");

      const a = await newContext(id, { language: "python" });
      const b = await newContext(id, { language: "python" });
      expect((await code(id, { context_id: a, code: "mine = 'a'" })).body.success).toBe(true);
      expect((await code(id, { context_id: b, code: "'mine' in dir()" })).body.output).toBe("False\n");
      expect((await code(id, { context_id: a, code: "mine" })).body.output).toBe("'a'\n");
      expect((await code(id, { context_id: a, code: "'shared' in dir()" })).body.output).toBe("False\n");

      const list = await t.json("GET", `/v1/sandboxes/${id}/contexts`);
      expect(list.status).toBe(200);
      expect(zContextList.safeParse(list.body).success).toBe(true);
      const ids = list.body.items.map((c: any) => c.id);
      expect(ids).toEqual(expect.arrayContaining(["ctx-default-python", "ctx-default-javascript", "ctx-default-typescript", a, b]));
      expect((await t.json("GET", `/v1/sandboxes/${id}/contexts/${a}`)).body).toMatchObject({ id: a, language: "python", default: false });

      const restarted = await t.json("POST", `/v1/sandboxes/${id}/contexts/${a}/restart`);
      expect(restarted.status).toBe(200);
      expect((await code(id, { context_id: a, code: "'mine' in dir()" })).body).toMatchObject({
        output: "False\n",
        kernel_restarted: false,
      });
      const deleted = await t.call("DELETE", `/v1/sandboxes/${id}/contexts/${b}`);
      expect(deleted.status).toBe(204);
      expect(deleted.headers.get("x-request-id")).toBeTruthy();
      expect((await t.json("GET", `/v1/sandboxes/${id}/contexts/${b}`)).status).toBe(404);
      const defaultDelete = await t.json("DELETE", `/v1/sandboxes/${id}/contexts/ctx-default-python`);
      expect(defaultDelete.status).toBe(409);
      expect(defaultDelete.body.error).toMatchObject({ code: "conflict", details: { reason: "default_context" } });
    });
  });

  test("the JS/TS kernel through Bay: top-level await, node built-ins, console order and the value, stacks, a rich MIME bundle", async () => {
    await withSandbox(t, async (id) => {
      const ts = await newContext(id, { language: "typescript" });
      const run = (src: string) => code(id, { context_id: ts, code: src });
      const awaited = await run(
        "import { createHash } from 'node:crypto'\nimport path from 'path'\nconst late: string = await new Promise<string>((r) => setTimeout(() => r('late'), 10))\n" +
          "console.log('one')\nconsole.error('two')\nconsole.log('three');\n[late, path.join('a', 'b'), createHash('sha256').update('x').digest('hex').length]",
      );
      expect(awaited.body).toMatchObject({ success: true, error: null, output: 'one\ntwo\nthree\n[ "late", "a/b", 64 ]\n' });
      expect(awaited.body.data).toEqual([{ type: "execute_result", data: { "text/plain": '[ "late", "a/b", 64 ]' } }]);
      // The awaited value and the imports persist like any declaration.
      expect((await run("late + path.sep")).body.output).toBe('"late/"\n');

      const thrown = await run("function explode(n: number): never {\n  throw new RangeError(`boom ${n}`)\n}\nexplode(3)");
      expect(thrown.status).toBe(200);
      expect(thrown.body.success).toBe(false);
      expect(thrown.body.error).toStartWith("RangeError: boom 3\n");
      expect(thrown.body.error).toMatch(/at explode \(cell-\d+:2:\d+\)/);

      const rich = await run(
        "class Table { [Symbol.for('Jupyter.display')]() { return { 'text/html': '<table><tr><td>1</td></tr></table>', 'image/png': new Uint8Array([137, 80, 78, 71]), 'text/plain': 'Table(1)' } } }\n" +
          "display({ 'text/markdown': '# shown' }, { raw: true })\nnew Table()",
      );
      expect(rich.body.success).toBe(true);
      expect(rich.body.data).toEqual([
        { type: "display_data", data: { "text/markdown": "# shown" } },
        {
          type: "execute_result",
          data: {
            "text/html": "<table><tr><td>1</td></tr></table>",
            "image/png": Buffer.from([137, 80, 78, 71]).toString("base64"),
            "text/plain": "Table(1)",
          },
        },
      ]);
      // The context is fine after the error.
      expect((await run("late.length")).body.output).toBe("4\n");
    });
  });

  test("the JS kernel survives an endless loop stopped by its timeout; its state is kept", async () => {
    await withSandbox(t, async (id) => {
      const js = await newContext(id, { language: "javascript" });
      await code(id, { context_id: js, code: "globalThis.keep = { ok: true }" });
      const looped = await code(id, { context_id: js, code: "for (;;) {}", timeout: 2 });
      expect(looped.status).toBe(504);
      expect(looped.body.error).toMatchObject({ code: "timeout", details: { timeout: 2, kernel_restarted: false } });
      const after = await code(id, { context_id: js, code: "keep.ok" });
      expect(after.body).toMatchObject({ success: true, output: "true\n", kernel_restarted: false });
    });
  });

  test("a package added with `ship add` from a local tarball in the workspace imports in a JS context (no registry)", async () => {
    await withSandbox(t, async (id) => {
      const setup = await sh(t, id, {
        timeout: 120,
        env: { BUN_BE_BUN: "1", BUN_CONFIG_REGISTRY: "http://127.0.0.1:9/", NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/" },
        command: [
          "set -e",
          "mkdir -p pkgsrc && cd pkgsrc",
          `printf '%s' '{"name":"bay-tiny-pkg","version":"3.1.4","main":"index.js"}' > package.json`,
          `printf '%s\\n' 'exports.shout = (s) => s.toUpperCase() + "!";' > index.js`,
          "ship pm pack >/dev/null",
          "cd ..",
          `printf '%s' '{"name":"ws","private":true}' > package.json`,
          "ship add ./pkgsrc/bay-tiny-pkg-3.1.4.tgz >/dev/null 2>&1",
          "test -f node_modules/bay-tiny-pkg/index.js && echo installed",
        ].join("\n"),
      });
      expect(setup.body.error).toBe("");
      expect(setup.body.output.trim()).toBe("installed");
      const ts = await code(id, {
        language: "typescript",
        code: "import { shout } from 'bay-tiny-pkg'\nconst word: string = 'ahoy'\nshout(word)",
      });
      expect(ts.body).toMatchObject({ success: true, output: '"AHOY!"\n' });
      const version = await code(id, { language: "javascript", code: "require('bay-tiny-pkg/package.json').version" });
      expect(version.body.output).toBe('"3.1.4"\n');
    });
  });

  test("a context's crash or memory blow-up leaves the other contexts and the runtime alone", async () => {
    await withSandbox(
      t,
      async (id) => {
        await py(t, id, "calm = 'default'");
        const js = await newContext(id, { language: "javascript" });
        await code(id, { context_id: js, code: "var calmJs = 'js'" });
        const hog = await newContext(id, { language: "python" });
        const [container] = await containersOf(t, id);
        // Kernels are first in line for the OOM killer, Ship is not.
        const pid = (await code(id, { context_id: hog, code: "import os\nos.getpid()" })).body.output.trim();
        const jsPid = (await code(id, { context_id: js, code: "process.pid" })).body.output.trim();
        const scores = await sh(t, id, {
          command: `cat /proc/${pid}/oom_score_adj /proc/${jsPid}/oom_score_adj /proc/$(pgrep -o -x ship)/oom_score_adj`,
        });
        expect(scores.body.output.trim().split("\n")).toEqual(["500", "500", "0"]);
        const blown = await code(id, {
          context_id: hog,
          code: "chunks = []\nwhile True:\n    chunks.append(b'x' * (32 * 1024 * 1024))",
          timeout: 120,
        });
        expect(blown.status).toBe(200);
        expect(blown.body.success).toBe(false);
        // Killed by the OOM killer (restarted) or refused memory (MemoryError): either way the others live on.
        expect(blown.body.kernel_restarted || /MemoryError/.test(blown.body.error)).toBe(true);
        expect((await py(t, id, "calm")).body.output).toBe("'default'\n");
        expect((await code(id, { context_id: js, code: "calmJs" })).body.output).toBe('"js"\n');
        expect((await code(id, { context_id: hog, code: "1 + 1" })).body.output).toBe("2\n");
        // Same container: the runtime itself was never replaced.
        expect((await containersOf(t, id)).map((c) => c.id)).toEqual([container!.id]);
        const crash = await code(id, { context_id: js, code: "process.abort()" });
        expect(crash.body).toMatchObject({ success: false, kernel_restarted: true });
        expect((await py(t, id, "calm")).body.output).toBe("'default'\n");
      },
      "small",
    );
  });

  test("contexts count in the sandbox's pids limit: one that would crowd it is refused (429), the others keep working", async () => {
    await withSandbox(
      t,
      async (id) => {
        await py(t, id, "steady = 'py'");
        const made: string[] = [];
        let refused: { status: number; body: any; res: Response } | undefined;
        for (let i = 0; i < 12 && !refused; i++) {
          const res = await t.json("POST", `/v1/sandboxes/${id}/contexts`, { body: { language: "javascript" } });
          if (res.status === 201) made.push(res.body.id);
          else refused = res;
        }
        // A JS context is several threads: a 32-pid sandbox cannot hold twelve of them.
        expect(made.length).toBeGreaterThan(0);
        expect(refused?.status).toBe(429);
        expect(zErrorBody.safeParse(refused!.body).success).toBe(true);
        expect(refused!.body.error).toMatchObject({ code: "quota_exceeded", details: { reason: "pids_limit", limit: 32 } });
        expect(refused!.body.error.details.pids_in_use).toBeLessThanOrEqual(32);
        expect(Number(refused!.res.headers.get("retry-after"))).toBeGreaterThan(0);
        const pids = await sh(t, id, { command: catCgroup(CGROUP.pidsMax) });
        expect(pids.body.output.trim()).toBe("32");
        // A JS kernel's thread count drifts by one or two (threads started and ended lazily),
        // so the sandbox is held well past the edge while the next rule is checked: threads
        // parked in the default Python kernel leave 10 pids free, short of the 16 a kernel needs.
        const pin = await py(t, id, PIN_PIDS(32 - 10));
        expect(pin.body).toMatchObject({ success: true, kernel_restarted: false });
        // A default context started by code/exec is held to the same rule, before any kernel starts.
        const viaDefault = await code(id, { language: "typescript", code: "1" });
        expect([viaDefault.status, viaDefault.body.error?.details?.reason]).toEqual([429, "pids_limit"]);
        expect((await py(t, id, "_hold.set()\nfor _t in _held: _t.join()\nall(not _t.is_alive() for _t in _held)")).body.output).toBe(
          "True\n",
        );
        console.log(`[contexts, pids_limit 32] ${made.length} JS contexts started, then: ${refused!.body.error.message}`);
        // The contexts that started, the default kernel and the runtime are untouched.
        for (const ctx of made) {
          expect((await code(id, { context_id: ctx, code: "6 * 7" })).body).toMatchObject({ output: "42\n", kernel_restarted: false });
        }
        expect((await py(t, id, "steady")).body).toMatchObject({ output: "'py'\n", kernel_restarted: false });
        // Deleting contexts gives their pids back: a context starts again. (All but one go:
        // two JS contexts sit right at the edge, 16 to 18 pids with Ship and Python.)
        for (const ctx of made.splice(1)) {
          expect((await t.call("DELETE", `/v1/sandboxes/${id}/contexts/${ctx}`)).status).toBe(204);
        }
        const again = await pollUntil(
          () => t.json("POST", `/v1/sandboxes/${id}/contexts`, { body: { language: "javascript" } }),
          (r) => r.status === 201,
          60_000,
          "a context to start once others were deleted",
        );
        expect((await code(id, { context_id: again.body.id, code: "1 + 1" })).body.output).toBe("2\n");
      },
      "few-pids",
    );
  });

  test("contexts are lost when compute stops: after a stop only the default Python context is left", async () => {
    await withSandbox(t, async (id) => {
      const js = await newContext(id, { language: "javascript" });
      await code(id, { context_id: js, code: "const mine = 1" });
      await code(id, { language: "typescript", code: "const alsoMine: number = 2" });
      expect((await t.call("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
      expect(await containersOf(t, id)).toEqual([]);
      const gone = await code(id, { context_id: js, code: "mine" });
      expect([gone.status, gone.body.error?.code]).toEqual([404, "not_found"]);
      const list = await t.json("GET", `/v1/sandboxes/${id}/contexts`);
      expect(list.body.items.map((c: any) => c.id)).toEqual(["ctx-default-python"]);
      const fresh = await code(id, { language: "typescript", code: "typeof alsoMine" });
      expect(fresh.body.output).toBe('"undefined"\n');
    });
  });

  test("measure: memory of an idle JS context next to an idle Python one", async () => {
    await withSandbox(t, async (id) => {
      const js = await newContext(id, { language: "javascript" });
      const pyCtx = await newContext(id, { language: "python" });
      const jsPid = (await code(id, { context_id: js, code: "process.pid" })).body.output.trim();
      const pyPid = (await code(id, { context_id: pyCtx, code: "import os\nos.getpid()" })).body.output.trim();
      await Bun.sleep(1000);
      const jsMiB = await rssMiB(id, jsPid);
      const pyMiB = await rssMiB(id, pyPid);
      console.log(
        `[contexts in ${SHIP_IMAGE}] idle RSS: javascript context ${jsMiB.toFixed(1)} MiB, python context ${pyMiB.toFixed(1)} MiB`,
      );
      expect(jsMiB).toBeGreaterThan(0);
      expect(pyMiB).toBeGreaterThan(0);
    });
  });
});
