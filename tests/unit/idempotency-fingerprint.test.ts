/** Idempotency fingerprints: canonical JSON makes key order irrelevant, and nothing else. */
import { describe, expect, test } from "bun:test";
import { fingerprint } from "../../src/bay/api/middleware/idempotency.ts";
import { canonicalJson } from "../../src/protocol/canonical-json.ts";

describe("canonicalJson", () => {
  test("object key order does not matter, at any depth", () => {
    const a = { profile: "p", ttl: 60, nested: { z: 1, a: [{ y: 2, b: 3 }] } };
    const b = { nested: { a: [{ b: 3, y: 2 }], z: 1 }, ttl: 60, profile: "p" };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"nested":{"a":[{"b":3,"y":2}],"z":1},"profile":"p","ttl":60}');
  });

  test("array order, values and types do matter", () => {
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
    expect(canonicalJson({ ttl: 60 })).not.toBe(canonicalJson({ ttl: "60" }));
    expect(canonicalJson({ ttl: null })).not.toBe(canonicalJson({}));
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: 1, b: 1 }));
  });

  test("keys that look alike are kept apart", () => {
    expect(canonicalJson({ "a,b": 1 })).not.toBe(canonicalJson({ a: 1, b: 1 }));
    expect(canonicalJson({ 'a":"b': 1 })).toBe('{"a\\":\\"b":1}');
  });

  test("scalars", () => {
    expect(canonicalJson(null)).toBe("null");
    expect(canonicalJson("x")).toBe('"x"');
    expect(canonicalJson(1.5)).toBe("1.5");
    expect(canonicalJson(true)).toBe("true");
  });
});

describe("fingerprint", () => {
  test("same request with keys reordered and whitespace changed → same fingerprint", () => {
    expect(fingerprint("POST", "/v1/sandboxes", '{"profile":"p","ttl":60}')).toBe(
      fingerprint("POST", "/v1/sandboxes", ' { "ttl": 60,\n "profile": "p" } '),
    );
  });

  test("an empty body and {} are the same request", () => {
    expect(fingerprint("POST", "/v1/sandboxes", "")).toBe(fingerprint("POST", "/v1/sandboxes", "{}"));
  });

  test("method, path and body each change it", () => {
    const base = fingerprint("POST", "/v1/sandboxes", '{"ttl":60}');
    expect(fingerprint("PUT", "/v1/sandboxes", '{"ttl":60}')).not.toBe(base);
    expect(fingerprint("POST", "/v1/workspaces", '{"ttl":60}')).not.toBe(base);
    expect(fingerprint("POST", "/v1/sandboxes", '{"ttl":61}')).not.toBe(base);
  });

  test("is a SHA-256 hex digest, and non-JSON bodies are fingerprinted raw", () => {
    expect(fingerprint("POST", "/p", "{}")).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint("POST", "/p", "not json")).not.toBe(fingerprint("POST", "/p", "not  json"));
  });
});
