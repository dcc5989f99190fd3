import { describe, expect, test } from "bun:test";
import { envVarIssues, MAX_ENV_VARS } from "../../src/protocol/env-vars.ts";

describe("the environment-variable rule", () => {
  test("ordinary names and values, odd but valid ones included, pass", () => {
    expect(envVarIssues(undefined)).toEqual([]);
    expect(envVarIssues({ PATH: "/bin", lower_case: "", "WITH SPACE": "a=b=c", ÜNÏ: "✓ 😀", __proto__x: "'\"$`\n" })).toEqual([]);
    expect(envVarIssues(Object.fromEntries(Array.from({ length: MAX_ENV_VARS }, (_, i) => [`V${i}`, "x"])))).toEqual([]);
  });

  test("each bad name or value is named; too many is one issue", () => {
    expect(envVarIssues({ "": "x", "A=B": "x", "N\0": "x", OK: "v\0", "S\ud800": "x", T: "\udc00y", "P\ud83d\ude00": "fine" })).toEqual([
      { name: "", message: expect.stringContaining("empty") },
      { name: "A=B", message: expect.stringContaining("'='") },
      { name: "N\0", message: expect.stringContaining("NUL") },
      { name: "OK", message: expect.stringContaining("NUL") },
      { name: "S\ud800", message: expect.stringContaining("surrogate") },
      { name: "T", message: expect.stringContaining("surrogate") },
    ]);
    const many = Object.fromEntries(Array.from({ length: MAX_ENV_VARS + 1 }, (_, i) => [`V${i}`, "x"]));
    expect(envVarIssues(many)).toEqual([{ message: `at most ${MAX_ENV_VARS} variables` }]);
  });
});
