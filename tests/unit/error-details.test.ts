/**
 * Every `details` field the code can send is declared for its error code in the
 * spec. The source of Bay (src/bay) and of Ship (src/ship: its validation_error,
 * not_found, payload_too_large, quota_exceeded, timeout, … pass through Bay
 * unchanged) is read for each `new BayError("code", …, { details: {…} })`,
 * `ShipError(…)` and error subclass `super("code", …)`, and each literal key is
 * looked up in that code's ErrorInfo variant. Real responses are checked too:
 * tests/support/harness.ts validates every error body against the spec.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { oas31 } from "openapi3-ts";
import { openApiDocument } from "../../src/bay/api/generated/index.ts";
import { assertContractErrorBody } from "../support/error-contract.ts";

const ROOT = join(import.meta.dir, "../..");
const schemas = openApiDocument().components?.schemas as Record<string, oas31.SchemaObject>;
const deref = (s: oas31.SchemaObject | oas31.ReferenceObject): oas31.SchemaObject =>
  "$ref" in s && s.$ref ? schemas[s.$ref.replace("#/components/schemas/", "")]! : (s as oas31.SchemaObject);

/** code → the details property names the spec declares for it. */
const declared = new Map<string, Set<string>>(
  Object.entries(schemas.ErrorInfo!.discriminator!.mapping!).map(([code, ref]) => {
    const details = deref(deref({ $ref: ref }).properties!.details!);
    return [code, new Set(Object.keys(details.properties ?? {}))];
  }),
);

/**
 * Spreads the scan cannot follow, with the keys they bring. A new spread fails the
 * test until it is listed here.
 */
const SPREADS: Record<string, { keys: string[] }> = {
  // A tree delete that could not finish says where what is left is (TreeDeleteLeft).
  "ship/paths.ts ...more?.details": { keys: ["remaining_at"] },
  "ship/filesystem/files.ts ...at": { keys: ["remaining_at"] },
  // ShipBadResponseError's extra details, from ShipClient.toError.
  "bay/runtime/errors/ship-bad-response-error.ts ...details": { keys: ["ship_status", "ship_code"] },
  // A start that failed in the engine keeps the driver error's client details (docker-errors.ts, docker-driver.ts);
  // the engine's own words travel in `internal`, never in details.
  "bay/domain/session-starter.ts ...e.details": {
    keys: ["reason", "image", "runtime", "exit_code", "oom_killed"],
  },
  "bay/domain/workspace-usage.ts ...(bytes": { keys: ["size"] },
};
/** Ship error codes Bay never passes through (a server in the sandbox failed a proxied request: ship_error). */
const SHIP_ONLY = new Set(["upstream_error"]);

/** `details:` that is not an object literal: Ship's own details passed through (checked at Ship's throw sites). */
const NON_LITERAL = new Set(["bay/runtime/ship-client.ts"]);

interface Site {
  file: string;
  code: string;
  keys: string[];
}

function* sourceFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "generated") yield* sourceFiles(p);
    } else if (p.endsWith(".ts")) yield p;
  }
}

/** The text from `open` (an opening bracket's index) to its matching close. */
function balanced(src: string, open: number): string {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const ch = src[i]!;
    if ("([{".includes(ch)) depth++;
    else if (")]}".includes(ch) && --depth === 0) return src.slice(open, i + 1);
  }
  throw new Error("unbalanced source");
}

/** Top-level keys of an object literal's text (`{ a, b: 1, ...c }` → a, b, ...c). */
function topLevelKeys(obj: string): string[] {
  const inner = obj.slice(1, -1);
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of inner) {
    if ("([{".includes(ch)) depth++;
    if (")]}".includes(ch)) depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const m = /^(\.\.\.[\w$.?(]+|[\w$]+)/.exec(p);
      if (!m) throw new Error(`cannot read a details key from ${JSON.stringify(p)}`);
      return m[1]!;
    });
}

function scan(): Site[] {
  const sites: Site[] = [];
  for (const dir of ["src/bay", "src/ship"]) {
    for (const path of sourceFiles(join(ROOT, dir))) {
      const file = relative(join(ROOT, "src"), path);
      const src = readFileSync(path, "utf8");
      // `super("code", …)` only in error subclasses (other classes call super with strings too).
      const subclass = /extends\s+(?:BayError|ShipError)\b/.test(src);
      const re = subclass ? /(?:new\s+(?:BayError|ShipError)|super)\(\s*"(\w+)"/g : /new\s+(?:BayError|ShipError)\(\s*"(\w+)"/g;
      for (let m = re.exec(src); m; m = re.exec(src)) {
        const call = balanced(src, src.indexOf("(", m.index));
        const d = /\bdetails:\s*/.exec(call);
        if (!d) {
          sites.push({ file, code: m[1]!, keys: [] });
          continue;
        }
        const rest = call.slice(d.index + d[0].length);
        if (!rest.startsWith("{")) {
          if (!NON_LITERAL.has(file)) throw new Error(`${file}: details of ${m[1]} is not an object literal`);
          continue;
        }
        sites.push({ file, code: m[1]!, keys: topLevelKeys(balanced(rest, 0)) });
      }
    }
  }
  return sites;
}

describe("details fields in the code are declared in the spec", () => {
  const sites = scan();

  test("the scan finds the throw sites (guards against an empty scan)", () => {
    expect(sites.length).toBeGreaterThan(60);
    expect(sites.some((s) => s.code === "capability_not_supported" && s.keys.includes("capabilities"))).toBe(true);
    expect(sites.some((s) => s.file.startsWith("ship/") && s.code === "timeout" && s.keys.includes("kernel_restarted"))).toBe(true);
  });

  test("every literal key, and every spread's keys, is in its code's details schema", () => {
    const missing: string[] = [];
    for (const site of sites) {
      // Ship's own codes that never reach a client as they are: Bay answers them as ship_error (runtime/ship-errors.ts).
      if (site.file.startsWith("ship/") && SHIP_ONLY.has(site.code)) continue;
      const allowed = declared.get(site.code);
      if (!allowed) {
        missing.push(`${site.file}: code ${site.code} has no ErrorInfo variant`);
        continue;
      }
      for (const key of site.keys) {
        let keys = [key];
        if (key.startsWith("...")) {
          const spread = SPREADS[`${site.file} ${key}`];
          if (!spread) {
            missing.push(`${site.file}: unlisted spread ${key} in ${site.code} details (add it to SPREADS)`);
            continue;
          }
          keys = spread.keys;
        }
        for (const k of keys) if (!allowed.has(k)) missing.push(`${site.file}: ${site.code} details.${k}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe("the response check the harness runs on every error", () => {
  const body = (code: string, details: unknown) => ({ error: { code, message: "m", request_id: "r", details } });

  test("accepts the shapes Bay sends", () => {
    expect(() => assertContractErrorBody(404, body("not_found", { kind: "sandbox", id: "sandbox-x" }))).not.toThrow();
    expect(() => assertContractErrorBody(401, body("unauthorized", {}))).not.toThrow();
    expect(() =>
      assertContractErrorBody(400, body("validation_error", { issues: [{ path: "json.ttl", message: "too small" }] })),
    ).not.toThrow();
  });

  test("refuses an undeclared field, a mistyped field, a missing required field and an unknown code", () => {
    expect(() => assertContractErrorBody(404, body("not_found", { kind: "sandbox", secret: "x" }))).toThrow("details");
    expect(() => assertContractErrorBody(401, body("unauthorized", { why: "x" }))).toThrow("does not match");
    expect(() => assertContractErrorBody(409, body("sandbox_expired", { sandbox_id: 7 }))).toThrow("sandbox_id");
    expect(() => assertContractErrorBody(409, body("sandbox_expired", {}))).toThrow("sandbox_id");
    expect(() => assertContractErrorBody(418, body("teapot", {}))).toThrow("code");
  });
});
