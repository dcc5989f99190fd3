/**
 * Requests that only a raw socket can send: odd methods and targets, raw bytes
 * in paths and headers, framing that contradicts itself, heads and bodies cut
 * short. Each case is classified: valid HTTP/1.1 must be answered within the
 * contract; malformed HTTP may be refused by closing, but any answer must
 * still be in the contract.
 */
import type { Rng } from "../lib/rng.ts";
import { type FuzzRequest, utf8Bytes } from "./request.ts";

export type OddCase = Pick<FuzzRequest, "method" | "target" | "headers" | "body" | "raw" | "syntax" | "mustReject"> & { tag: string };

const AUTH: Array<[string, string]> = [["X-Owner", "alice"]];

/** One raw-HTTP case against `target` (a valid request target of `method`). */
export function oddHttpCase(rng: Rng, method: string, target: string, bodyLimit: number): OddCase {
  const base = { method, target, headers: [...AUTH] as Array<[string, string]>, syntax: "valid" as const };
  const tag = rng.pick([
    "unknown-method",
    "lowercase-method",
    "connect-method",
    "trace-method",
    "star-target",
    "star-target-get",
    "absolute-form",
    "authority-form",
    "fragment",
    "raw-utf8-path",
    "raw-dotdot-path",
    "raw-double-slash",
    "raw-segments-2000",
    "raw-e-acute-segments",
    "bare-percent",
    "invalid-utf8-percent",
    "url-70k",
    "header-70k",
    "headers-300",
    "dup-x-request-id",
    "dup-authorization",
    "dup-content-type",
    "dup-content-length-same",
    "dup-content-length-differ",
    "cl-and-te",
    "te-chunked",
    "te-chunked-bad-size",
    "te-chunked-truncated",
    "te-unknown",
    "non-ascii-header-value",
    "non-ascii-header-name",
    "nul-in-header",
    "header-no-colon",
    "space-before-colon",
    "obs-fold",
    "lf-only",
    "no-host",
    "http-1.0",
    "bad-version",
    "http2-preface",
    "huge-declared-length",
    "negative-length",
    "length-longer-than-body",
    "cut-in-head",
    "expect-continue",
    "body-on-get",
    "body-over-limit-no-body-op",
    "upgrade-websocket",
  ] as const);
  switch (tag) {
    case "unknown-method":
      return { ...base, tag, method: rng.pick(["FOO", "PROPFIND", "BREW", "M-SEARCH"]), mustReject: "method the spec does not define" };
    case "lowercase-method":
      return { ...base, tag, method: method.toLowerCase() };
    case "connect-method":
      return { ...base, tag, method: "CONNECT", mustReject: "method the spec does not define" };
    case "trace-method":
      return { ...base, tag, method: "TRACE", mustReject: "method the spec does not define" };
    case "star-target":
      return { ...base, tag, method: "OPTIONS", target: "*" };
    case "star-target-get":
      return { ...base, tag, method: "GET", target: "*", syntax: "malformed" };
    case "absolute-form":
      return { ...base, tag, target: `http://127.0.0.1${target}` };
    case "authority-form":
      return { ...base, tag, target: "127.0.0.1:80", syntax: "malformed" };
    case "fragment":
      return { ...base, tag, target: `${target}#frag`, syntax: "malformed" };
    case "raw-utf8-path":
      return { ...base, tag, target: utf8Bytes(`${target}${target.includes("?") ? "&" : "?"}x=é😀`), syntax: "malformed" };
    case "raw-dotdot-path":
      return { ...base, tag, target: `/v1/sandboxes/../workspaces/..%2f..%2f/../../health` };
    case "raw-double-slash":
      return { ...base, tag, target: target.replace(/\/([^/?]+)(?=[/?]|$)/, "/$1//") };
    case "raw-segments-2000":
      return { ...base, tag, target: `/v1/sandboxes/${"a/".repeat(2000)}keepalive` };
    case "raw-e-acute-segments":
      return {
        ...base,
        tag,
        target: utf8Bytes(`/v1/workspaces/${"é".repeat(200)}/filesystem/files?path=${"é".repeat(200)}`),
        syntax: "malformed",
      };
    case "bare-percent":
      return { ...base, tag, target: `${target}${target.includes("?") ? "&" : "?"}path=%&x=%zz` };
    case "invalid-utf8-percent":
      return { ...base, tag, target: `${target}${target.includes("?") ? "&" : "?"}path=%C0%AF%ED%A0%80%FF` };
    case "url-70k":
      return { ...base, tag, target: `${target}${target.includes("?") ? "&" : "?"}pad=${"u".repeat(70_000)}` };
    case "header-70k":
      return { ...base, tag, headers: [...AUTH, ["X-Pad", "h".repeat(70_000)]] };
    case "headers-300":
      return {
        ...base,
        tag,
        headers: [...AUTH, ...Array.from({ length: 300 }, (_, i): [string, string] => [`X-Many-${i}`, "v".repeat(50)])],
      };
    case "dup-x-request-id":
      return { ...base, tag, headers: [...AUTH, ["X-Request-Id", "first-id"], ["X-Request-Id", "second-id"]] };
    case "dup-authorization":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Authorization", "Bearer aaaaaaaaaaaaaaaaaaaa"], ["Authorization", "Bearer bbbbbbbbbbbbbbbbbbbbbbb"]],
        mustReject: "bad credentials",
      };
    case "dup-content-type":
      return { ...base, tag, headers: [...AUTH, ["Content-Type", "application/json"], ["Content-Type", "text/plain"]], body: "{}" };
    case "dup-content-length-same":
      return { ...base, tag, headers: [...AUTH, ["Content-Length", "2"], ["Content-Length", "2"]], body: "{}", raw: { noLength: true } };
    case "dup-content-length-differ":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Content-Length", "2"], ["Content-Length", "3"]],
        body: "{}x",
        raw: { noLength: true },
        syntax: "malformed",
      };
    case "cl-and-te":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Content-Length", "5"], ["Transfer-Encoding", "chunked"]],
        body: "2\r\n{}\r\n0\r\n\r\n",
        raw: { noLength: true },
        syntax: "malformed",
      };
    case "te-chunked":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Content-Type", "application/json"], ["Transfer-Encoding", "chunked"]],
        body: "1\r\n{\r\n1\r\n}\r\n0\r\n\r\n",
        raw: { noLength: true },
      };
    case "te-chunked-bad-size":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Transfer-Encoding", "chunked"]],
        body: "zz\r\n{}\r\n0\r\n\r\n",
        raw: { noLength: true },
        syntax: "malformed",
      };
    case "te-chunked-truncated":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Transfer-Encoding", "chunked"]],
        body: '100\r\n{"a":',
        raw: { noLength: true, halfClose: true },
        syntax: "truncated",
      };
    case "te-unknown":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Transfer-Encoding", "gzip, chunked"]],
        body: "0\r\n\r\n",
        raw: { noLength: true },
        syntax: "malformed",
      };
    case "non-ascii-header-value":
      return { ...base, tag, headers: [...AUTH, ["X-Request-Id", utf8Bytes("café-☃")], ["X-Note", "\xe9\xff"]] };
    case "non-ascii-header-name":
      return { ...base, tag, headers: [...AUTH, [utf8Bytes("X-Ünïcode"), "v"]], syntax: "malformed" };
    case "nul-in-header":
      return { ...base, tag, headers: [...AUTH, ["X-Nul", "a\u0000b"]], syntax: "malformed" };
    case "header-no-colon":
      return { ...base, tag, raw: { line: `${method} ${target} HTTP/1.1\r\nBroken header line` }, syntax: "malformed" };
    case "space-before-colon":
      return { ...base, tag, headers: [...AUTH, ["X-Space ", "v"]], syntax: "malformed" };
    case "obs-fold":
      return { ...base, tag, headers: [...AUTH, ["X-Folded", "a\r\n  b"]], syntax: "malformed" };
    case "lf-only":
      return { ...base, tag, raw: { eol: "\n" }, syntax: "malformed" };
    case "no-host":
      return { ...base, tag, raw: { noHost: true }, syntax: "malformed" };
    case "http-1.0":
      return { ...base, tag, raw: { line: `${method} ${target} HTTP/1.0`, noHost: true } };
    case "bad-version":
      return { ...base, tag, raw: { line: `${method} ${target} HTTP/1.x` }, syntax: "malformed" };
    case "http2-preface":
      return { ...base, tag, method: "PRI", target: "*", raw: { verbatim: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" }, syntax: "malformed" };
    case "huge-declared-length":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Content-Length", String(bodyLimit * 1000)]],
        body: "{}",
        raw: { noLength: true, halfClose: true },
        syntax: "truncated",
      };
    case "negative-length":
      return { ...base, tag, headers: [...AUTH, ["Content-Length", "-1"]], body: "{}", raw: { noLength: true }, syntax: "malformed" };
    case "length-longer-than-body":
      return {
        ...base,
        tag,
        headers: [...AUTH, ["Content-Type", "application/json"], ["Content-Length", "100"]],
        body: '{"a":',
        raw: { noLength: true, halfClose: true },
        syntax: "truncated",
      };
    case "cut-in-head":
      return {
        ...base,
        tag,
        raw: { verbatim: `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Own`, halfClose: true },
        syntax: "truncated",
      };
    case "expect-continue":
      return { ...base, tag, headers: [...AUTH, ["Content-Type", "application/json"], ["Expect", "100-continue"]], body: "{}" };
    case "body-on-get":
      return {
        ...base,
        tag,
        method: "GET",
        target: "/v1/profiles",
        headers: [...AUTH, ["Content-Type", "application/json"]],
        body: '{"x":1}',
      };
    case "body-over-limit-no-body-op":
      return {
        ...base,
        tag,
        method: "POST",
        target: "/v1/sandboxes/{{sb.own}}/keepalive",
        headers: [...AUTH, ["Content-Type", "application/json"]],
        body: " ".repeat(bodyLimit + 1),
      };
    case "upgrade-websocket":
      return {
        ...base,
        tag,
        headers: [
          ...AUTH,
          ["Connection", "Upgrade"],
          ["Upgrade", "websocket"],
          ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
          ["Sec-WebSocket-Version", "13"],
        ],
      };
  }
}
