import { describe, expect, test } from "bun:test";
import type { oas31 } from "openapi3-ts";
import { openApiDocument } from "../../src/bay/api/generated/spec.ts";
import { ERROR_CODES, ERROR_STATUS } from "../../src/bay/errors.ts";

// errors.ts is the domain's copy of the contract's error codes (the domain may not
// import the API layer's generated code); this keeps the two from drifting apart.
describe("error codes", () => {
  test("the domain's codes are exactly the codes of the spec's ErrorInfo variants", () => {
    const info = openApiDocument().components?.schemas?.ErrorInfo as oas31.SchemaObject;
    expect([...ERROR_CODES].sort() as string[]).toEqual(Object.keys(info.discriminator?.mapping ?? {}).sort());
  });

  test("every status in the status table is declared as a response somewhere in the spec", () => {
    const declared = new Set<number>();
    for (const item of Object.values(openApiDocument().paths ?? {})) {
      for (const op of Object.values(item as Record<string, { responses?: Record<string, unknown> }>)) {
        for (const status of Object.keys(op.responses ?? {})) declared.add(Number(status));
      }
    }
    const unused = new Set(["method_not_allowed", "forbidden"]);
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      if (unused.has(code)) continue;
      expect({ code, declared: declared.has(status) }).toEqual({ code, declared: true });
    }
  });
});
