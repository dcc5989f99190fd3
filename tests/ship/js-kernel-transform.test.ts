/**
 * The JS kernel's cell rewriting on its own: transformed cells are run here with a
 * minimal stand-in for the kernel's `__bay__` helper, so each case checks behaviour
 * (values, persistence, line numbers), not the generated text.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import vm from "node:vm";
import { cellValue } from "../../src/ship/kernel/js/cell.ts";
import { CellSyntaxError, HELPER, transformCell } from "../../src/ship/kernel/js/transform.ts";

const transpiler = new Bun.Transpiler({ loader: "ts", target: "bun", trimUnusedImports: false, deadCodeElimination: false });
const transpile = (ts: string) => transpiler.transformSync(ts);
let cellNumber = 0;

beforeAll(() => {
  const meta = { url: "file:///work/cell" };
  const helper = { g: globalThis, hop: (v: unknown) => v, import: (s: string) => import(s), meta };
  if (!(HELPER in globalThis)) Object.defineProperty(globalThis, HELPER, { value: helper });
});

/** Runs a cell the way the kernel does and returns its value. */
async function cell(code: string): Promise<unknown> {
  const { source } = transformCell(code, transpile);
  return (await cellValue(vm.runInThisContext(source, { filename: `unit-cell-${++cellNumber}` }))).value;
}

describe("cell rewriting", () => {
  test("declarations of every kind become globals that later cells can redeclare", async () => {
    await cell("const tA = 1; let tB = 2; var tC = 3\nfunction tF() { return tA + tB + tC }\nclass TK { static v = 7 }");
    expect(await cell("tF() + TK.v")).toBe(13);
    await cell("const tA = 10\nlet tB");
    expect(await cell("[tA, tB, tF()]")).toEqual([10, undefined, Number.NaN]);
  });

  test("functions are hoisted within their cell", async () => {
    await cell("const tHoisted = tEarly()\nfunction tEarly() { return 'hoisted' }");
    expect(await cell("tHoisted")).toBe("hoisted");
  });

  test("destructuring patterns, defaults and rest declare every bound name", async () => {
    await cell("const { tP = 1, tQ: [tR, ...tS], ...tT } = { tQ: [1, 2, 3], x: 9 }");
    expect(await cell("[tP, tR, tS, tT]")).toEqual([1, 1, [2, 3], { x: 9 }]);
  });

  test("var in nested blocks and loop heads is global; let/const in blocks stay local", async () => {
    await cell(
      "if (true) var tV = 'v'\nfor (var tI = 0; tI < 2; tI++) {}\nfor (var tK in { a: 1 }) {}\nfor (var [tX] of [[5]]) {}\n{ const tLocal = 1 }",
    );
    expect(await cell("[tV, tI, tK, tX, typeof tLocal]")).toEqual(["v", 2, "a", 5, "undefined"]);
  });

  test("a rewritten declaration never swallows the next line (ASI kept)", async () => {
    expect(await cell("let tU\n(() => 'called')()")).toBe("called");
    expect(await cell("const tW = 1\n;[tW, 2]")).toEqual([1, 2]);
  });

  test("the last expression is the value, even a lone string or an object literal", async () => {
    expect(await cell("1 + 1 // trailing comment")).toBe(2);
    expect(await cell("'just a string'")).toBe("just a string");
    expect(await cell("{ a: 1, b: [2] }")).toEqual({ a: 1, b: [2] });
    expect(await cell("{ let inBlock = 1 }")).toBeUndefined();
    expect(await cell("const tNone = 5")).toBeUndefined();
    expect(await cell("await Promise.resolve(4) * 2")).toBe(8);
  });

  test("imports of every form, import() and import.meta", async () => {
    expect(
      await cell(
        "import tPath, { join as tJoin, sep } from 'node:path'\nimport * as tOs from 'node:os'\nimport 'node:fs'\n" +
          "[tPath.join('a', 'b'), tJoin('c', 'd'), sep, typeof tOs.cpus, typeof (await import('node:url')).pathToFileURL, import.meta.url]",
      ),
    ).toEqual(["a/b", "c/d", "/", "function", "function", "file:///work/cell"]);
  });

  test("export is tolerated on declarations and refused on lists", async () => {
    expect(await cell("export const tE = 3\nexport function tG() { return tE }\ntG()")).toBe(3);
    expect(() => transformCell("export { tE }", transpile)).toThrow(CellSyntaxError);
  });

  test("line N of a JavaScript cell is line N of the script", async () => {
    const err = await cell("const tOk = 1\n\nthrow new Error('line three')").catch((e: Error) => e);
    expect(String((err as Error).stack)).toMatch(new RegExp(`unit-cell-${cellNumber}:3:`));
  });

  test("TypeScript is transpiled; type errors of syntax are reported with their position", async () => {
    expect(await cell("enum TColor { Red, Green }\ninterface TPt { x: number }\nconst tPt: TPt = { x: 2 }\ntPt.x + TColor.Green")).toBe(3);
    expect(transformCell("let n: number = 1", transpile).transpiled).toBe(true);
    expect(transformCell("let n = 1", transpile).transpiled).toBe(false);
    expect(() => transformCell("const broken: = 1", transpile)).toThrow(/Unexpected.*\(1:/);
    expect(() => transformCell("1 +", transpile)).toThrow(CellSyntaxError);
  });
});
