/**
 * scripts/gen refuses what it does not translate: for each keyword outside its
 * subset, a small spec using it makes `generate` throw, naming the keyword and
 * where it sits. The keywords it does translate still generate working zod.
 */
import { describe, expect, test } from "bun:test";
import { stringify } from "yaml";
import { z } from "zod";
import { generate } from "../../scripts/gen/generate.ts";

/** A one-operation spec whose component schema `Thing` is `thing`, used by a request body and a response. */
function specWith(thing: unknown, extra: { parameter?: unknown; media?: Record<string, unknown> } = {}): string {
  return stringify({
    openapi: "3.1.0",
    info: { title: "t", version: "1.2.3" },
    paths: {
      "/things": {
        post: {
          operationId: "postThing",
          parameters: extra.parameter ? [extra.parameter] : [],
          requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" }, ...(extra.media ?? {}) } } },
          responses: {
            "200": { description: "ok", content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" } } } },
          },
        },
      },
    },
    components: { schemas: { Thing: thing } },
  });
}

const gen = (thing: unknown, extra?: Parameters<typeof specWith>[1]) => () => generate(specWith(thing, extra));

/** Keywords outside the generator's subset, each in a schema that is otherwise fine. */
const REFUSED: Array<[string, unknown]> = [
  ["allOf", { allOf: [{ type: "object" }, { type: "object" }] }],
  ["anyOf", { anyOf: [{ type: "string" }, { type: "integer" }] }],
  ["not", { type: "string", not: { const: "x" } }],
  ["multipleOf", { type: "integer", multipleOf: 5 }],
  ["uniqueItems", { type: "array", items: { type: "string" }, uniqueItems: true }],
  ["contains", { type: "array", items: { type: "string" }, contains: { const: "x" } }],
  ["prefixItems", { type: "array", items: { type: "string" }, prefixItems: [{ type: "string" }] }],
  ["minProperties", { type: "object", minProperties: 1 }],
  ["maxProperties", { type: "object", maxProperties: 3 }],
  ["patternProperties", { type: "object", patternProperties: { "^x": { type: "string" } } }],
  ["propertyNames", { type: "object", propertyNames: { pattern: "^[a-z]+$" } }],
  ["dependentRequired", { type: "object", properties: { a: { type: "string" } }, dependentRequired: { a: ["b"] } }],
  ["if", { type: "object", if: { required: ["a"] }, else: { required: ["b"] } }],
  ["nullable", { type: "string", nullable: true }],
  ["readOnly", { type: "string", readOnly: true }],
  ["writeOnly", { type: "string", writeOnly: true }],
  ["deprecated", { type: "string", deprecated: true }],
  ["contentEncoding", { type: "string", contentEncoding: "base64" }],
  ["$defs", { type: "object", $defs: { x: { type: "string" } } }],
  ["a junk key from an unquoted YAML description", { type: "boolean", description: "True when output", "the result was cut.": null }],
];

describe("the generator throws on every keyword it does not translate", () => {
  for (const [keyword, thing] of REFUSED) {
    test(keyword, () => {
      const name = keyword.startsWith("a junk") ? "the result was cut." : keyword;
      expect(gen(thing)).toThrow(new RegExp(`components\\.schemas\\.Thing: keyword "${name.replace(/[$.]/g, "\\$&")}"`));
    });
  }

  for (const format of ["email", "uuid", "uri", "int32", "int64", "date", "byte"]) {
    test(`format: ${format}`, () => {
      if (format.startsWith("int")) expect(gen({ type: "integer", format })).toThrow('keyword "format" does not apply to type "integer"');
      else expect(gen({ type: "string", format })).toThrow(`format "${format}" is not supported`);
    });
  }

  test("a keyword of another type (minLength on an integer, minimum on a string, items on an object)", () => {
    expect(gen({ type: "integer", minLength: 1 })).toThrow('keyword "minLength" does not apply to type "integer"');
    expect(gen({ type: "string", minimum: 1 })).toThrow('keyword "minimum" does not apply to type "string"');
    expect(gen({ type: "object", items: { type: "string" } })).toThrow('keyword "items" does not apply to type "object"');
  });

  test("a keyword nested deep in properties is found with its path", () => {
    const thing = { type: "object", properties: { a: { type: "array", items: { type: "number", multipleOf: 2 } } } };
    expect(gen(thing)).toThrow('components.schemas.Thing.properties.a.items: keyword "multipleOf"');
  });

  test("keywords next to oneOf, next to $ref, and an incomplete discriminator", () => {
    expect(gen({ oneOf: [{ type: "string" }], minLength: 1 })).toThrow('keyword "minLength" next to oneOf');
    const withOther = specWith({ type: "object", properties: { a: { $ref: "#/components/schemas/Other", default: 1 } } }).replace(
      "    Thing:",
      `${stringifyOthers({ Other: { type: "string" } })}    Thing:`,
    );
    expect(() => generate(withOther)).toThrow('keyword "default" next to $ref');
    expect(gen({ type: "string", discriminator: { propertyName: "kind" } })).toThrow('keyword "discriminator" without oneOf');
  });

  test("OpenAPI 3.0's boolean exclusiveMinimum", () => {
    expect(gen({ type: "integer", minimum: 0, exclusiveMinimum: true })).toThrow("exclusiveMinimum must be a number");
  });

  test("required names a property that does not exist", () => {
    expect(gen({ type: "object", required: ["a"], properties: { b: { type: "string" } } })).toThrow('required property "a"');
  });

  test("parameter style/explode and a media type's encoding", () => {
    const parameter = { name: "q", in: "query", style: "form", explode: false, schema: { type: "string" } };
    expect(gen({ type: "string" }, { parameter })).toThrow('parameter query:q: "style" is not supported');
    expect(gen({ type: "string" }, { media: { encoding: { a: { contentType: "text/plain" } } } })).toThrow(
      'requestBody application/json: "encoding" is not supported',
    );
  });

  test("info.version must be package.json's", () => {
    expect(() => generate(specWith({ type: "string" }), { version: "9.9.9" })).toThrow("info.version");
    expect(() => generate(specWith({ type: "string" }), { version: "1.2.3" })).not.toThrow();
  });
});

/** Evaluates the generated zod for `Thing` (schemas.ts is self-contained but for the zod import). */
function thingSchema(thing: unknown, others: Record<string, unknown> = {}): z.ZodType {
  const spec = specWith(thing).replace("    Thing:", `${Object.keys(others).length ? stringifyOthers(others) : ""}    Thing:`);
  const source = generate(spec).get("src/bay/api/generated/schemas.ts")!;
  const body = source
    .replace(/^import .*$/m, "")
    .replace(/^export type .*$/gm, "")
    .replace(/^export /gm, "");
  return new Function("z", `${body}\nreturn zThing;`)(z) as z.ZodType;
}

function stringifyOthers(others: Record<string, unknown>): string {
  return stringify({ x: others })
    .split("\n")
    .slice(1)
    .map((l) => (l ? `  ${l}` : l))
    .join("\n");
}

describe("what the generator translates still works", () => {
  test("date-time, binary, string bounds and patterns", () => {
    const s = thingSchema({
      type: "object",
      required: ["at", "name"],
      properties: {
        at: { type: "string", format: "date-time" },
        name: { type: "string", minLength: 2, maxLength: 3, pattern: "^[a-z]+$" },
      },
    });
    expect(s.safeParse({ at: "2024-01-02T03:04:05Z", name: "ab" }).success).toBe(true);
    expect(s.safeParse({ at: "yesterday", name: "ab" }).success).toBe(false);
    expect(s.safeParse({ at: "2024-01-02T03:04:05Z", name: "a" }).success).toBe(false);
    expect(s.safeParse({ at: "2024-01-02T03:04:05Z", name: "AB" }).success).toBe(false);
    expect(thingSchema({ type: "string", format: "binary" }).safeParse(new Blob(["x"])).success).toBe(true);
  });

  test("numbers with bounds, arrays with bounds, closed and open objects", () => {
    expect(thingSchema({ type: "integer", minimum: 1, exclusiveMaximum: 5 }).safeParse(5).success).toBe(false);
    expect(thingSchema({ type: "integer", minimum: 1, exclusiveMaximum: 5 }).safeParse(4).success).toBe(true);
    expect(thingSchema({ type: "array", items: { type: "string" }, maxItems: 1 }).safeParse(["a", "b"]).success).toBe(false);
    const closed = thingSchema({ type: "object", additionalProperties: false, properties: { a: { type: "string" } } });
    expect(closed.safeParse({ a: "x", b: 1 }).success).toBe(false);
    expect(thingSchema({ type: "object", additionalProperties: false }).safeParse({}).success).toBe(true);
    expect(thingSchema({ type: "object", additionalProperties: false }).safeParse({ a: 1 }).success).toBe(false);
  });

  test("oneOf with a discriminator narrows on the property's const", () => {
    const s = thingSchema(
      {
        oneOf: [{ $ref: "#/components/schemas/A" }, { $ref: "#/components/schemas/B" }],
        discriminator: { propertyName: "kind", mapping: { a: "#/components/schemas/A", b: "#/components/schemas/B" } },
      },
      {
        A: { type: "object", required: ["kind", "x"], properties: { kind: { type: "string", const: "a" }, x: { type: "string" } } },
        B: { type: "object", required: ["kind"], properties: { kind: { type: "string", const: "b" }, y: { type: "integer" } } },
      },
    );
    expect(s.safeParse({ kind: "a", x: "1" }).success).toBe(true);
    expect(s.safeParse({ kind: "a" }).success).toBe(false);
    expect(s.safeParse({ kind: "b", y: 2 }).success).toBe(true);
    expect(s.safeParse({ kind: "c" }).success).toBe(false);
  });

  test("a discriminator whose mapping disagrees with the variants' const throws", () => {
    const spec = specWith({
      oneOf: [{ $ref: "#/components/schemas/A" }],
      discriminator: { propertyName: "kind", mapping: { b: "#/components/schemas/A" } },
    }).replace(
      "    Thing:",
      stringifyOthers({ A: { type: "object", required: ["kind"], properties: { kind: { type: "string", const: "a" } } } }) + "    Thing:",
    );
    expect(() => generate(spec)).toThrow('variant #/components/schemas/A must require "kind" with const "b"');
  });
});
