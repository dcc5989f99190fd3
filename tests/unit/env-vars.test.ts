import { describe, expect, test } from "bun:test";
import { ENV_LIMITS, envVarIssues } from "../../src/protocol/env-vars.ts";
import { MERGED_SET_LIMITS } from "../../src/bay/domain/env-vars.ts";

const many = (n: number, value = "x") => Object.fromEntries(Array.from({ length: n }, (_, i) => [`V${i}`, value]));

describe("the environment-variable rule", () => {
  test("ordinary names and values, odd but valid ones included, pass", () => {
    expect(envVarIssues(undefined)).toEqual([]);
    expect(envVarIssues({ PATH: "/bin", lower_case: "", "WITH SPACE": "a=b=c", ÜNÏ: "✓ 😀", constructor: "'\"$`\n" })).toEqual([]);
    expect(envVarIssues(many(ENV_LIMITS.vars))).toEqual([]);
    expect(envVarIssues({ BIG: "x".repeat(ENV_LIMITS.bytes - 3) })).toEqual([]);
  });

  test("each bad name or value is named; too many, or too many bytes, is one issue", () => {
    expect(
      envVarIssues({
        "": "x",
        "A=B": "x",
        "N\0": "x",
        OK: "v\0",
        "S\ud800": "x",
        T: "\udc00y",
        "P\ud83d\ude00": "fine",
        ["__proto__"]: "x",
      }),
    ).toEqual([
      { name: "", message: expect.stringContaining("empty") },
      { name: "A=B", message: expect.stringContaining("'='") },
      { name: "N\0", message: expect.stringContaining("NUL") },
      { name: "OK", message: expect.stringContaining("NUL") },
      { name: "S\ud800", message: expect.stringContaining("surrogate") },
      { name: "T", message: expect.stringContaining("surrogate") },
      { name: "__proto__", message: expect.stringContaining("JavaScript") },
    ]);
    expect(envVarIssues(many(ENV_LIMITS.vars + 1))).toEqual([{ message: `at most ${ENV_LIMITS.vars} variables` }]);
    // Bytes of names and values as UTF-8: a name alone can go over, and so can a multi-byte value.
    expect(envVarIssues({ ["N".repeat(ENV_LIMITS.bytes)]: "x" })).toEqual([
      { message: `at most ${ENV_LIMITS.bytes} bytes of names and values` },
    ]);
    expect(envVarIssues({ A: "é".repeat(ENV_LIMITS.bytes / 2) })).toHaveLength(1);
  });

  test("two sets held to MERGED_SET_LIMITS always fit ENV_LIMITS once merged", () => {
    const a = many(MERGED_SET_LIMITS.vars, "a".repeat(20));
    const b = Object.fromEntries(Object.entries(many(MERGED_SET_LIMITS.vars, "b".repeat(20))).map(([k, v]) => [`W${k}`, v]));
    expect(envVarIssues(a, MERGED_SET_LIMITS)).toEqual([]);
    expect(envVarIssues(b, MERGED_SET_LIMITS)).toEqual([]);
    expect(envVarIssues({ ...a, ...b })).toEqual([]);
    expect(envVarIssues({ ...a, X: "y" }, MERGED_SET_LIMITS)).toHaveLength(1);
  });
});
