/**
 * The Python client's generator on specs that try to break it: names that are Python
 * keywords or the module's own helpers, descriptions with quotes and control characters,
 * a title that would close the docstring, paths with stray braces, two operations that
 * would be one method. What it writes must compile and run nothing; what it cannot write
 * safely must stop it.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { generatePythonOperations } from "../../scripts/gen/python-client.ts";

const ok = { "200": { description: "ok", content: { "application/json": { schema: { type: "object" } } } } };

function spec(paths: Record<string, unknown>, info: Record<string, string> = { title: "T", version: "1" }, schemas = {}) {
  return stringify({ openapi: "3.1.0", info, paths, components: { schemas } });
}

/** Parses the module with python3 (running none of it): its docstring and the kinds of its top-level statements. */
function parsed(source: string): { code: number; err: string; out: string } {
  const dir = mkdtempSync(join(tmpdir(), "py-gen-"));
  try {
    writeFileSync(join(dir, "m.py"), source);
    const script =
      "import ast,json,sys; m=ast.parse(open(sys.argv[1]).read()); print(json.dumps([ast.get_docstring(m), [type(n).__name__ for n in m.body]]))";
    const r = Bun.spawnSync(["python3", "-c", script, join(dir, "m.py")]);
    return { code: r.exitCode, err: r.stderr.toString(), out: r.stdout.toString() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the Python client's generator", () => {
  test("keywords and the module's own names become safe arguments; quotes and backslashes stay text", () => {
    const source = generatePythonOperations(
      spec(
        {
          "/v1/things/{segment}": {
            post: {
              operationId: "import",
              summary: 'Says "hi" \\ ends with a quote"',
              description: 'and """ three',
              parameters: [{ name: "segment", in: "path", required: true, schema: { type: "string" } }],
              requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/B" } } } },
              responses: ok,
            },
          },
        },
        { title: 'T""" + __import__("os").system("id") + """', version: "1" },
        { B: { type: "object", properties: { from: { type: "string" }, "max-size": { type: "integer" }, close: { type: "boolean" } } } },
      ),
    );
    expect(source).toContain("def import_(self, segment_: str, *,");
    expect(source).toContain("from_: Optional[str] = None");
    expect(source).toContain('_fields({"from": from_, "max-size": max_size, "close": close_})');
    expect(source).toContain("{segment(segment_)}");
    const module = parsed(source);
    expect({ code: module.code, err: module.err }).toEqual({ code: 0, err: "" });
    // The title stays text in the docstring: nothing but the imports, the helper and the class runs.
    expect(JSON.parse(module.out)).toEqual([
      `Bay's operations (T""" + __import__("os").system("id") + """ 1), one method each.`,
      ["Expr", "ImportFrom", "ImportFrom", "FunctionDef", "ClassDef"],
    ]);
  });

  test("what cannot be written safely stops the generator", () => {
    const op = (extra: Record<string, unknown> = {}) => ({ operationId: "getX", responses: ok, ...extra });
    const cases: Array<[string, Record<string, unknown>]> = [
      ["a control character in a description", { "/x": { get: op({ description: "a\u0000b" }) } }],
      ["an empty brace pair in a path", { "/x/{}": { get: op() } }],
      ["a quote in a path", { '/x"': { get: op() } }],
      ["a path parameter that is not declared", { "/x/{id}": { get: op() } }],
      ["a name that is not an identifier", { "/x": { get: op({ operationId: "get x" }) } }],
      ["two operations, one method", { "/a": { get: op({ operationId: "getA" }) }, "/b": { get: op({ operationId: "get_a" }) } }],
      [
        "a port call's parameter named like its own query argument",
        {
          "/p/{path}": {
            get: op({
              parameters: [
                { name: "path", in: "path", required: true, schema: { type: "string" } },
                { name: "query", in: "header", schema: { type: "string" } },
              ],
              responses: { "200": { description: "the server's", content: { "*/*": {} } } },
            }),
          },
        },
      ],
    ];
    for (const [what, paths] of cases) {
      let thrown: unknown;
      try {
        generatePythonOperations(spec(paths));
      } catch (e) {
        thrown = e;
      }
      expect([what, thrown instanceof Error]).toEqual([what, true]);
    }
  });
});
