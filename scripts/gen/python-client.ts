/**
 * The Python client's operations: clients/python/bay_client/_operations.py, one method
 * per operation of openapi/bay.v1.yaml, on the standard library's http.client (the
 * hand-written _transport.py). Its shape:
 * - path parameters are positional (`sandbox_id`, `context_id`, `process_id`, ...);
 *   query parameters, headers (`idempotency_key`, `request_id`) and the fields of a
 *   JSON body are keyword-only, required where the spec says so, else `None` (not sent,
 *   so Bay's default applies);
 * - a JSON answer is a dict, text is a str, bytes (a download) are bytes, 204 is None;
 *   an operation that can also stream (`Accept: text/event-stream`) has a second
 *   method, `<name>_events`, yielding Events; a download has `<name>_to(out=…)` writing
 *   to a file as the bytes come; an upload sends its `data` as raw bytes;
 * - a failure raises BayError with the error body's code and details.
 * The terminal (a WebSocket) has no method: see the README.
 */
import { parse } from "yaml";
import { SPEC_PATH } from "./generate.ts";

export const PYTHON_OPERATIONS_PATH = "clients/python/bay_client/_operations.py";

type Schema = Record<string, any>;
interface Param {
  py: string;
  wire: string;
  in: "path" | "query" | "header";
  required: boolean;
  type: string;
  rest?: boolean;
}

const METHODS = ["get", "post", "put", "patch", "delete"];
const snake = (s: string) =>
  s
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/-/g, "_")
    .toLowerCase();
/** Python's keywords and soft keywords, and the names the generated methods use themselves. */
const RESERVED = new Set([
  "False",
  "None",
  "True",
  "_",
  "and",
  "as",
  "assert",
  "async",
  "await",
  "break",
  "case",
  "class",
  "continue",
  "def",
  "del",
  "elif",
  "else",
  "except",
  "finally",
  "for",
  "from",
  "global",
  "if",
  "import",
  "in",
  "is",
  "lambda",
  "match",
  "nonlocal",
  "not",
  "or",
  "pass",
  "raise",
  "return",
  "try",
  "type",
  "while",
  "with",
  "yield",
  "self",
  "body",
  "data",
  "out",
  // The generated module's helpers and BayClient's own methods.
  "segment",
  "rest_of_path",
  "_fields",
  "close",
]);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A Python name for `s`: a reserved word gets a trailing `_`; anything else that is not an identifier stops the generator. */
function pyName(s: string): string {
  const name = s.replace(/-/g, "_");
  if (!IDENTIFIER.test(name)) throw new Error(`${SPEC_PATH}: ${JSON.stringify(s)} cannot be a Python name`);
  return RESERVED.has(name) ? `${name}_` : name;
}

function pyType(spec: Schema, s: Schema | undefined): string {
  if (!s) return "Any";
  if (s.$ref) return pyType(spec, resolve(spec, s.$ref));
  switch (s.type) {
    case "string":
      return "str";
    case "integer":
      return "int";
    case "number":
      return "float";
    case "boolean":
      return "bool";
    case "array":
      return `List[${pyType(spec, s.items)}]`;
    case "object":
      return s.additionalProperties?.type === "string" ? "Dict[str, str]" : "Dict[str, Any]";
    default:
      return "Any";
  }
}

function resolve(spec: Schema, ref: string): Schema {
  const [, , kind, name] = ref.split("/") as [string, string, string, string];
  const found = spec.components[kind]?.[name];
  if (!found) throw new Error(`${SPEC_PATH}: unresolved ${ref}`);
  return found;
}

function param(spec: Schema, p: Schema): Param {
  const ref = p.$ref ? (p.$ref as string).split("/").pop()! : undefined;
  const d = p.$ref ? resolve(spec, p.$ref) : p;
  const py = pyName(
    d.in === "header" ? (ref === "XRequestId" ? "request_id" : snake(d.name)) : d.in === "path" && ref ? snake(ref) : snake(d.name),
  );
  return {
    py,
    wire: d.name,
    in: d.in,
    required: d.in === "path" || d.required === true,
    type: pyType(spec, d.schema),
    rest: d.in === "path" && d.name === "path",
  };
}

/** How a 2xx answer is read, and whether the operation can stream events. */
function answer(spec: Schema, op: Schema): { expect: string; events: boolean; json: boolean } {
  const types = new Set<string>();
  for (const [code, r0] of Object.entries<Schema>(op.responses)) {
    if (!code.startsWith("2")) continue;
    const r = r0.$ref ? resolve(spec, r0.$ref) : r0;
    for (const t of Object.keys(r.content ?? {})) types.add(t);
  }
  const events = types.has("text/event-stream");
  const json = types.has("application/json");
  if (json) return { expect: "json", events, json };
  if (types.has("*/*")) return { expect: "port", events, json };
  if ([...types].some((t) => t.startsWith("text/") && t !== "text/event-stream")) return { expect: "text", events, json };
  if (types.size === 0) return { expect: "empty", events, json };
  if (events) return { expect: "events", events, json };
  return { expect: "bytes", events, json };
}

function doc(text: string | undefined, indent: string): string {
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(text ?? "")) throw new Error(`${SPEC_PATH}: a description holds a control character`);
  const t = (text ?? "").trim().replace(/\\/g, "\\\\").replace(/"/g, '\\"');
  const lines = t.split("\n").map((l, i) => (i === 0 || l === "" ? l : `${indent}${l}`));
  return t ? `${indent}"""${lines.join("\n")}"""\n` : "";
}

function operation(spec: Schema, path: string, method: string, item: Schema, op: Schema): string {
  const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p: Schema) => param(spec, p));
  const content = op.requestBody?.content ?? {};
  const jsonSchema: Schema | undefined = content["application/json"]?.schema;
  const body = jsonSchema?.$ref ? resolve(spec, jsonSchema.$ref) : jsonSchema;
  const fields: Param[] = [];
  let bodyArg: "fields" | "body" | "data" | undefined;
  if (body?.properties && !body.oneOf) {
    bodyArg = "fields";
    for (const [name, s] of Object.entries<Schema>(body.properties)) {
      fields.push({
        py: pyName(snake(name)),
        wire: name,
        in: "query",
        required: (body.required ?? []).includes(name),
        type: pyType(spec, s),
      });
    }
  } else if (body) bodyArg = "body";
  else if (content["application/octet-stream"]) bodyArg = "data";
  const { expect, events, json } = answer(spec, op);
  // A port call's query string and headers are the sandbox server's: any it likes.
  const portArgs = expect === "port" ? ["query", "headers"] : [];
  const names = [...params.map((p) => p.py), ...fields.map((f) => f.py), ...portArgs];
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`${SPEC_PATH}: ${op.operationId} has two arguments named ${dup}`);

  const positional = params.filter((p) => p.in === "path").map((p) => `${p.py}: ${p.type === "int" ? "int" : "str"}`);
  const kw = [...params.filter((p) => p.in !== "path"), ...fields];
  const required = kw.filter((p) => p.required).map((p) => `${p.py}: ${p.type}`);
  const optional = kw.filter((p) => !p.required).map((p) => `${p.py}: Optional[${p.type}] = None`);
  if (bodyArg === "body") required.push(`body: ${body?.oneOf ? "Dict[str, Any]" : pyType(spec, body)}`);
  if (bodyArg === "data") {
    if (op.requestBody.required) required.push("data: Body");
    else optional.push("data: Optional[Body] = None");
  }
  if (portArgs.length) optional.push("query: Optional[Query] = None", "headers: Optional[Dict[str, str]] = None");
  const args = ["self", ...positional, ...(required.length + optional.length > 0 ? ["*", ...required, ...optional] : [])];
  if (!/^(?:[A-Za-z0-9_\-/.]|\{[A-Za-z_][A-Za-z0-9_]*\})+$/.test(path))
    throw new Error(`${SPEC_PATH}: the path ${JSON.stringify(path)} cannot go into Python source as it is`);
  const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const p = params.find((x) => x.in === "path" && x.wire === name);
    if (!p) throw new Error(`${SPEC_PATH}: ${op.operationId}'s path names {${name}}, which is not one of its path parameters`);
    return `{${p.rest ? `rest_of_path(${p.py})` : `segment(${p.py})`}}`;
  });
  const q = params.filter((p) => p.in === "query").map((p) => `${JSON.stringify(p.wire)}: ${p.py}`);
  const h = params.filter((p) => p.in === "header").map((p) => `${JSON.stringify(p.wire)}: ${p.py}`);
  const call: string[] = [`"${method.toUpperCase()}"`, `f"${url}"`];
  if (q.length) call.push(`query={${q.join(", ")}}`);
  if (h.length) call.push(`headers={${h.join(", ")}}`);
  if (bodyArg === "fields") call.push(`json_body=_fields({${fields.map((f) => `${JSON.stringify(f.wire)}: ${f.py}`).join(", ")}})`);
  if (bodyArg === "body") call.push("json_body=body");
  if (portArgs.length) call.push("port_query=query", "port_headers=headers");
  const name = pyName(snake(op.operationId));
  const returns = { json: "Any", text: "str", bytes: "bytes", port: "PortAnswer", empty: "None", events: "None" }[expect];
  const out: string[] = [];
  const summary = [op.summary, op.description].filter(Boolean).join("\n\n");
  if (json || !events) {
    const extra = [...call, ...(bodyArg === "data" ? ["data=data"] : []), `expect="${expect}"`];
    out.push(
      `    def ${name}(${args.join(", ")}) -> ${returns}:\n${doc(summary, "        ")}        return self._t.call(${extra.join(", ")})\n`,
    );
  }
  if (expect === "bytes") {
    const toArgs = [...args, ...(args.includes("*") ? [] : ["*"]), "out: BinaryIO"];
    out.push(
      `    def ${name}_to(${toArgs.join(", ")}) -> int:\n${doc(`${op.summary ?? ""}, written to \`out\` as it comes (never whole in memory); answers the bytes written.`, "        ")}        return self._t.copy_to(out, ${call.join(", ")})\n`,
    );
  }
  if (events) {
    const eventsName = json ? `${name}_events` : name;
    out.push(
      `    def ${eventsName}(${args.join(", ")}) -> EventStream:\n${doc(`${op.summary ?? ""}, streamed: its server-sent events as they come (sent now; close the stream, or leave it, to end the call).`, "        ")}        return self._t.events(${call.join(", ")})\n`,
    );
  }
  return out.join("\n");
}

/** The text of clients/python/bay_client/_operations.py for the spec `specText`. */
export function generatePythonOperations(specText: string): string {
  const spec = parse(specText) as Schema;
  const methods: string[] = [];
  const names = new Set<string>();
  for (const [path, item] of Object.entries<Schema>(spec.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const codes = Object.keys(op.responses);
      if (!codes.some((c) => c.startsWith("2"))) continue; // a WebSocket upgrade (the terminal)
      const text = operation(spec, path, method, item, op);
      for (const [, name] of text.matchAll(/^ {4}def (\w+)\(/gm)) {
        if (names.has(name!)) throw new Error(`${SPEC_PATH}: two operations would be the method ${name}`);
        names.add(name!);
      }
      methods.push(text);
    }
  }
  return `# generated by scripts/gen.ts from ${SPEC_PATH} — do not edit
${doc(`Bay's operations (${spec.info.title} ${spec.info.version}), one method each.`, "").trimEnd()}

from typing import Any, BinaryIO, Dict, List, Optional

from ._transport import Body, EventStream, PortAnswer, Query, Transport, rest_of_path, segment


def _fields(fields: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class Operations:
    _t: Transport

${methods.join("\n")}`;
}
