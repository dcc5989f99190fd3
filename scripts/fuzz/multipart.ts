/**
 * multipart/form-data bodies for the upload operations: well-formed ones in
 * every order the spec allows, and broken ones (no closing boundary, cut
 * headers, two files, wrong boundary, …). Each case says whether the spec lets
 * it succeed; a truncated or incomplete form must never be stored.
 */
import type { Rng } from "../lib/rng.ts";
import { HOSTILE_PATHS, HOSTILE_STRINGS } from "./corpus.ts";

export interface MultipartCase {
  tag: string;
  contentType: string;
  body: Uint8Array;
  /** Set when the spec forbids success (path or file missing, form cut short). */
  mustReject?: string;
  /** The form is cut short on purpose. */
  truncated?: boolean;
}

const enc = (s: string) => Buffer.from(s, "utf8");

interface Part {
  name?: string;
  filename?: string;
  data: Uint8Array | string;
  /** Replaces the generated part headers. */
  rawHeaders?: string;
}

function form(boundary: string, parts: Part[], opts: { close?: boolean; eol?: string; preamble?: string } = {}): Uint8Array {
  const eol = opts.eol ?? "\r\n";
  const chunks: Uint8Array[] = [];
  if (opts.preamble) chunks.push(enc(opts.preamble + eol));
  for (const p of parts) {
    const headers =
      p.rawHeaders ??
      `Content-Disposition: form-data${p.name !== undefined ? `; name="${p.name}"` : ""}${p.filename !== undefined ? `; filename="${p.filename}"` : ""}${
        p.filename !== undefined ? `${eol}Content-Type: application/octet-stream` : ""
      }`;
    chunks.push(enc(`--${boundary}${eol}${headers}${eol}${eol}`), typeof p.data === "string" ? enc(p.data) : p.data, enc(eol));
  }
  if (opts.close !== false) chunks.push(enc(`--${boundary}--${eol}`));
  return Buffer.concat(chunks);
}

const CASES = [
  "path-first",
  "file-first",
  "query-path-only",
  "two-files",
  "two-paths",
  "only-path",
  "only-file",
  "no-closing-boundary",
  "cut-part-headers",
  "cut-mid-file",
  "empty-body",
  "only-closing-boundary",
  "wrong-boundary",
  "no-boundary-param",
  "part-without-disposition",
  "file-without-filename",
  "hostile-filename",
  "hostile-path-field",
  "lf-line-endings",
  "preamble",
  "huge-part-headers",
  "over-upload-limit",
  "boundary-71-chars",
] as const;
export type MultipartTag = (typeof CASES)[number];

/** A multipart case for an upload operation (`tag`, or one at random); `maxUploadBytes` is the Bay's configured limit. */
export function multipartCase(rng: Rng, validPath: string, maxUploadBytes: number, only?: MultipartTag): MultipartCase {
  const boundary = `fz${rng.uint32().toString(36)}${rng.uint32().toString(36)}`;
  const ct = `multipart/form-data; boundary=${boundary}`;
  const data = rng.bytes(rng.pick([0, 1, 100, 70_000]));
  const path: Part = { name: "path", data: validPath };
  const file: Part = { name: "file", filename: "f.bin", data };
  const whole = form(boundary, [path, file]);
  const tag = only ?? rng.pick(CASES);
  switch (tag) {
    case "path-first":
      return { tag, contentType: ct, body: whole };
    case "file-first":
      return { tag, contentType: ct, body: form(boundary, [file, path]) };
    case "query-path-only":
      return { tag, contentType: ct, body: form(boundary, [file]) };
    case "two-files":
      return { tag, contentType: ct, body: form(boundary, [path, file, { ...file, filename: "g.bin" }]) };
    case "two-paths":
      return { tag, contentType: ct, body: form(boundary, [path, { name: "path", data: "fuzz/other.bin" }, file]) };
    case "only-path":
      return { tag, contentType: ct, body: form(boundary, [path]), mustReject: "upload without a file part" };
    case "only-file":
      return { tag, contentType: ct, body: form(boundary, [file]), mustReject: "upload without a path" };
    case "no-closing-boundary":
      return {
        tag,
        contentType: ct,
        body: form(boundary, rng.chance(0.5) ? [path, file] : [file, path], { close: false }),
        mustReject: "form without its closing boundary",
        truncated: true,
      };
    case "cut-part-headers": {
      const b = Buffer.concat([form(boundary, [path], { close: false }), enc(`--${boundary}\r\nContent-Disposition: form-da`)]);
      return { tag, contentType: ct, body: b, mustReject: "form cut inside part headers", truncated: true };
    }
    case "cut-mid-file":
      return {
        tag,
        contentType: ct,
        body: whole.subarray(0, whole.byteLength - 10 - rng.int(0, 20)),
        mustReject: "form cut inside the file",
        truncated: true,
      };
    case "empty-body":
      return { tag, contentType: ct, body: new Uint8Array(), mustReject: "empty form" };
    case "only-closing-boundary":
      return { tag, contentType: ct, body: enc(`--${boundary}--\r\n`), mustReject: "form without parts" };
    case "wrong-boundary":
      return {
        tag,
        contentType: `multipart/form-data; boundary=${boundary}x`,
        body: whole,
        mustReject: "boundary of the body differs from the header",
      };
    case "no-boundary-param":
      return { tag, contentType: "multipart/form-data", body: whole, mustReject: "multipart without a boundary" };
    case "part-without-disposition":
      return {
        tag,
        contentType: ct,
        body: form(boundary, [path, { data, rawHeaders: "Content-Type: application/octet-stream" }]),
        mustReject: "file part without a name",
      };
    case "file-without-filename":
      return { tag, contentType: ct, body: form(boundary, [path, { name: "file", data: "plain field" }]) };
    case "hostile-filename": {
      const [t, s] = rng.pick(HOSTILE_STRINGS);
      return { tag: `${tag} ${t}`, contentType: ct, body: form(boundary, [path, { ...file, filename: s.replace(/"/g, "") }]) };
    }
    case "hostile-path-field": {
      const [t, s] = rng.pick(rng.chance(0.6) ? HOSTILE_PATHS : HOSTILE_STRINGS);
      return {
        tag: `${tag} ${t}`,
        contentType: ct,
        body: form(boundary, [{ name: "path", data: s }, file]),
        ...(escapes(s) ? { mustReject: "path escapes /workspace" } : {}),
      };
    }
    case "lf-line-endings":
      return { tag, contentType: ct, body: form(boundary, [path, file], { eol: "\n" }) };
    case "preamble":
      return { tag, contentType: ct, body: form(boundary, [path, file], { preamble: "ignored preamble text" }) };
    case "huge-part-headers":
      return {
        tag,
        contentType: ct,
        body: form(boundary, [
          path,
          { ...file, rawHeaders: `Content-Disposition: form-data; name="file"; filename="f"\r\nX-Pad: ${"h".repeat(100_000)}` },
        ]),
      };
    case "over-upload-limit":
      return {
        tag,
        contentType: ct,
        body: form(boundary, [path, { ...file, data: new Uint8Array(maxUploadBytes + 1) }]),
        mustReject: "file over max_upload_bytes",
      };
    case "boundary-71-chars": {
      const long = "b".repeat(71);
      return { tag, contentType: `multipart/form-data; boundary=${long}`, body: form(long, [path, file]) };
    }
  }
}

/** Whether a workspace path is one the spec names as refused: absolute, a `..` escape, or NUL. */
export function escapes(path: string): boolean {
  if (path.startsWith("/") || path.includes("\u0000")) return true;
  let depth = 0;
  for (const seg of path.split("/")) {
    if (seg === "..") depth--;
    else if (seg !== "" && seg !== ".") depth++;
    if (depth < 0) return true;
  }
  return false;
}
