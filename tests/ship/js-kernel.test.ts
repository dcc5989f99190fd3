/**
 * The JavaScript/TypeScript kernel as Ship runs it, as a REPL: real `ship js-kernel`
 * processes driven through JsKernelProcess (interrupts: js-kernel-interrupts.test.ts;
 * its protocol channel, caps and process life: js-kernel-protocol.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JsKernelProcess } from "../../src/ship/kernel/js/js-kernel-process.ts";
import { endKernels, run, startKernel, tempDir, track } from "./support/js-kernel.ts";

afterAll(endKernels);

describe("js kernel: a REPL for JavaScript", () => {
  let k: JsKernelProcess;
  beforeAll(async () => {
    k = await startKernel();
  });

  test("ready names the runtime and the language", async () => {
    const other = new JsKernelProcess({ cwd: tempDir("js-kernel-"), maxOutputBytes: 1024, language: "typescript" });
    track(other);
    expect(await other.ready).toEqual({ runtime: `bun ${Bun.version}`, language: "typescript" });
  });

  test("top-level declarations persist across cells, and a const may be declared again", async () => {
    await run(k, "const a = 20\nlet b = 1\nvar c = 1\nfunction twice(x) { return 2 * x }\nclass Box { constructor(v) { this.v = v } }");
    expect((await run(k, "twice(a) + b + c")).result.output).toBe("42\n");
    expect((await run(k, "new Box(a).v")).result.output).toBe("20\n");
    // A REPL lets a later cell redeclare; functions see the new binding.
    expect((await run(k, "const a = 50\ntwice(a)")).result.output).toBe("100\n");
    const again = await run(k, "let b\nb");
    expect(again.result.success).toBe(true);
    expect(again.result.data).toEqual([]); // undefined: no execute_result
    const counts = [(await run(k, "1")).result.execution_count, (await run(k, "2")).result.execution_count];
    expect(counts[1]).toBe(counts[0]! + 1);
  });

  test("destructuring, nested var and for-loops declare globals; block-scoped let stays local", async () => {
    await run(k, "const { p, q: [r] } = { p: 1, q: [2] }\nfor (var i = 0; i < 3; i++) { var last = i }\n{ let hidden = 1 }");
    expect((await run(k, "[p, r, i, last, typeof hidden]")).result.output).toBe('[ 1, 2, 3, 2, "undefined" ]\n');
  });

  test("top-level await", async () => {
    const res = await run(k, "const slow = await new Promise((r) => setTimeout(() => r('late'), 5))\nawait Promise.resolve(slow + '!')");
    expect(res.result).toMatchObject({ success: true, output: '"late!"\n' });
    expect((await run(k, "slow")).result.output).toBe('"late"\n');
  });

  test("the last expression is inspected like Bun's REPL; an object literal cell is an object", async () => {
    expect((await run(k, "({ n: 1, list: [1, 2], m: new Map([[1, 'x']]) })")).result.data).toEqual([
      { type: "execute_result", data: { "text/plain": Bun.inspect({ n: 1, list: [1, 2], m: new Map([[1, "x"]]) }) } },
    ]);
    expect((await run(k, "{ a: 1, b: 'two' }")).result.output).toBe(`${Bun.inspect({ a: 1, b: "two" })}\n`);
    expect((await run(k, "'text' // a comment after the value")).result.output).toBe('"text"\n');
    expect((await run(k, "undefined")).result).toMatchObject({ success: true, output: "", data: [] });
    expect((await run(k, "const z = 3")).result).toMatchObject({ success: true, output: "", data: [] });
  });

  test("node built-ins import by default, named and namespace imports, dynamic import() and require", async () => {
    const res = await run(
      k,
      'import fs from "node:fs"\nimport { join } from "path"\nimport * as os from "node:os"\nconst { createHash } = await import("node:crypto");\n' +
        '[typeof fs.readFileSync, join("a", "b"), typeof os.cpus, createHash("sha256").update("x").digest("hex").length, require("node:path").sep]',
    );
    expect(res.result.error).toBeNull();
    expect(res.result.output).toBe('[ "function", "a/b", "function", 64, "/" ]\n');
    // The imported names persist like any declaration.
    expect((await run(k, "join('c', 'd')")).result.output).toBe('"c/d"\n');
  });

  test("console output is captured in order, stdout and stderr interleaved", async () => {
    const res = await run(
      k,
      "console.log('one', 2, { three: 3 })\nconsole.error('two')\nconsole.info('%s is %d', 'x', 5)\nconsole.warn('four')\nprocess.stdout.write('five\\n')\nprocess.stderr.write('six\\n')\nconsole.log('seven')",
    );
    const streams = res.events.filter((e) => e.event === "stream").map((e) => [e.name, e.text]);
    expect(streams).toEqual([
      ["stdout", `one 2 ${Bun.inspect({ three: 3 })}\n`],
      ["stderr", "two\n"],
      ["stdout", "x is 5\n"],
      ["stderr", "four\n"],
      ["stdout", "five\n"],
      ["stderr", "six\n"],
      ["stdout", "seven\n"],
    ]);
    expect(res.result.output).toBe(streams.map(([, text]) => text).join(""));
  });

  test("console.table, console.dir and groups", async () => {
    const res = await run(
      k,
      "console.table([{ a: 1 }, { a: 2 }])\nconsole.dir({ d: 1 })\nconsole.group('g')\nconsole.log('inside')\nconsole.groupEnd()",
    );
    expect(res.result.output).toContain("│ a │");
    expect(res.result.output).toContain(Bun.inspect({ d: 1 }));
    expect(res.result.output).toContain("g\n  inside\n");
  });

  test("a thrown error fails the cell with its stack pointing at the cell's lines", async () => {
    const res = await run(k, "function explode() {\n  throw new TypeError('boom')\n}\nexplode()");
    expect(res.result.success).toBe(false);
    expect(res.result.error).toStartWith("TypeError: boom\n");
    expect(res.result.error).toMatch(/at explode \(cell-\d+:2:\d+\)/);
    expect(res.result.error).not.toContain("bay-kernel");
    expect(res.result.error).not.toContain("kernel/js");
  });

  test("a rejected await, an unhandled rejection and an error thrown in a timer fail the cell", async () => {
    const awaited = await run(k, "await Promise.reject(new RangeError('nope'))");
    expect(awaited.result).toMatchObject({ success: false });
    expect(awaited.result.error).toStartWith("RangeError: nope");

    const unhandled = await run(k, "Promise.reject(new Error('forgotten'))\n'value'");
    expect(unhandled.result.success).toBe(false);
    expect(unhandled.result.error).toStartWith("Error: forgotten");

    const timer = await run(
      k,
      "console.log('before')\nawait new Promise((resolve) => setTimeout(() => { throw new Error('in a timer') }, 1))",
    );
    expect(timer.result.success).toBe(false);
    expect(timer.result.error).toStartWith("Error: in a timer");
    expect(timer.result.output).toBe("before\n");

    const thrownValue = await run(k, "throw { code: 7 }");
    expect(thrownValue.result.error).toBe(`Uncaught ${Bun.inspect({ code: 7 })}`);
    // The context is fine afterwards.
    expect((await run(k, "twice(21)")).result.output).toBe("42\n");
  });

  test("a syntax error fails the cell and changes nothing", async () => {
    const res = await run(k, "const broken = ;");
    expect(res.result.success).toBe(false);
    expect(res.result.error).toStartWith("SyntaxError: ");
    expect((await run(k, "typeof broken")).result.output).toBe('"undefined"\n');
  });

  test("rich output: the Jupyter.display hook (sync and async) and display()", async () => {
    const hook = await run(
      k,
      "class Chart { [Symbol.for('Jupyter.display')]() { return { 'text/html': '<b>chart</b>', 'image/png': new Uint8Array([137, 80, 78, 71]), 'text/plain': 'Chart' } } }\nnew Chart()",
    );
    expect(hook.result.data).toEqual([
      {
        type: "execute_result",
        data: { "text/html": "<b>chart</b>", "image/png": Buffer.from([137, 80, 78, 71]).toString("base64"), "text/plain": "Chart" },
      },
    ]);
    expect(hook.result.output).toBe("Chart\n");

    const asyncHook = await run(k, "({ async [Symbol.for('Jupyter.display')]() { return { 'application/json': { ok: true } } } })");
    expect(asyncHook.result.data).toEqual([{ type: "execute_result", data: { "application/json": '{"ok":true}' } }]);

    const shown = await run(
      k,
      "display({ 'text/markdown': '# hi' }, { raw: true })\nconsole.log('between')\ndisplay(new Chart())\ndisplay([1, 2])\n7",
    );
    expect(shown.events.map((e) => e.event)).toEqual(["display", "stream", "display", "display"]);
    expect(shown.result.data.map((d) => d.type)).toEqual(["display_data", "display_data", "display_data", "execute_result"]);
    expect(shown.result.data[0]!.data).toEqual({ "text/markdown": "# hi" });
    expect(shown.result.data[2]!.data).toEqual({ "text/plain": Bun.inspect([1, 2]) });
    expect(shown.result.output).toBe("between\n7\n");
  });
});

describe("js kernel: TypeScript", () => {
  test("annotations, interfaces, enums, generics and type-only imports are accepted", async () => {
    const k = await startKernel({ language: "typescript" });
    const res = await run(
      k,
      "import type { Stats } from 'node:fs'\ninterface Point { x: number; y: number }\nenum Color { Red, Green }\n" +
        "function first<T>(items: T[]): T | undefined { return items[0] }\nconst p: Point = { x: first<number>([3, 4])!, y: 1 }\n" +
        "type Alias = Stats | null\nlet s: Alias = null;\n[p.x + p.y, Color.Green, Color[0]] as const",
    );
    expect(res.result.error).toBeNull();
    expect(res.result.output).toBe('[ 4, 1, "Red" ]\n');
    expect((await run(k, "const q: Point = { ...p, y: 10 }; q.y + Color.Green")).result.output).toBe("11\n");
    const bad = await run(k, "const x: = 1");
    expect(bad.result.success).toBe(false);
    expect(bad.result.error).toStartWith("SyntaxError: ");
  });
});

describe("js kernel: packages from the working directory", () => {
  test("a package installed from a local tarball into node_modules imports, with no registry contacted", async () => {
    // Any registry request would land here and be counted.
    let registryHits = 0;
    const registry = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          registryHits++;
          socket.end();
        },
        data() {},
      },
    });
    try {
      const root = tempDir("js-kernel-pkg-");
      const pkg = join(root, "tiny");
      mkdirSync(pkg);
      writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "bay-tiny-pkg", version: "1.2.3", main: "index.js" }));
      writeFileSync(
        join(pkg, "index.js"),
        "exports.greet = (name) => `hello ${name}`;\nexports.version = require('./package.json').version;\n",
      );
      const env = {
        ...process.env,
        BUN_CONFIG_REGISTRY: `http://127.0.0.1:${registry.port}/`,
        NPM_CONFIG_REGISTRY: `http://127.0.0.1:${registry.port}/`,
        BUN_INSTALL_CACHE_DIR: join(root, "cache"),
      };
      const pack = Bun.spawnSync([process.execPath, "pm", "pack"], { cwd: pkg, env, stderr: "pipe", stdout: "pipe" });
      expect(pack.exitCode).toBe(0);
      const tarball = readdirSync(pkg).find((f) => f.endsWith(".tgz"));
      expect(tarball).toBeDefined();

      const workspace = join(root, "workspace");
      mkdirSync(workspace);
      writeFileSync(join(workspace, "package.json"), JSON.stringify({ name: "workspace", private: true }));
      const add = Bun.spawnSync([process.execPath, "add", join(pkg, tarball!)], { cwd: workspace, env, stderr: "pipe", stdout: "pipe" });
      expect(add.exitCode, add.stderr.toString()).toBe(0);
      expect(existsSync(join(workspace, "node_modules", "bay-tiny-pkg", "index.js"))).toBe(true);
      expect(registryHits).toBe(0);

      writeFileSync(join(workspace, "local.ts"), "export const fromFile: number = 5;\n");
      const k = await startKernel({ cwd: workspace });
      const res = await run(
        k,
        "import tiny from 'bay-tiny-pkg'\nimport { greet } from 'bay-tiny-pkg'\nimport { fromFile } from './local.ts'\n[tiny.version, greet('bay'), fromFile, require('bay-tiny-pkg').version]",
      );
      expect(res.result.error).toBeNull();
      expect(res.result.output).toBe('[ "1.2.3", "hello bay", 5, "1.2.3" ]\n');
      const missing = await run(k, "await import('not-installed-anywhere')");
      expect(missing.result.success).toBe(false);
      expect(missing.result.error).toContain("not-installed-anywhere");
    } finally {
      registry.stop(true);
    }
  });
});
