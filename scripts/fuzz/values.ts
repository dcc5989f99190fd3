/**
 * Values for request fields: valid ones (from the schema, with hints where a
 * field needs meaning — a path that exists, code that runs) and hostile ones
 * (wrong types, limits ± 1, the corpus). Hints never widen what is checked:
 * whether a request must be refused is decided by the schema alone.
 */
import type { Rng } from "../lib/rng.ts";
import { HOSTILE_NUMBERS, HOSTILE_STRINGS, HUGE_STRINGS, VALUES_OF_TYPE } from "./corpus.ts";
import type { Schema } from "./json-schema.ts";

/** Meaningful valid values by field name (`opId.field` wins over `field`). */
const HINTS: Record<string, readonly unknown[]> = {
  code: ["1+1", "print('fuzz')", "import os\nos.getcwd()", "x = 41\nx + 1"],
  command: ["echo fuzz", "pwd", "ls -la", "true", "printf 'a\\0b'"],
  timeout: [5, 10, 30],
  cwd: [".", "fuzz"],
  env: [{ FUZZ: "1" }, {}],
  background: [false, false, true],
  content: ["hello from the fuzzer\n", "", "é😀\u0000\ud7ff"],
  profile: ["python-default", "python-default", "python-data"],
  workspace_id: ["{{ws.ext}}"],
  ttl: [0, null, 3600],
  extend_by: [60, 2592000],
  size_limit_mb: [64, 1],
  "writeFile.path": ["fuzz/w.txt", "fuzz/new/dir/w.txt"],
  "writeWorkspaceFile.path": ["fuzz/w.txt", "fuzz/new/dir/w.txt"],
  "readFile.path": ["fuzz/hello.txt", "fuzz/bin.dat", "fuzz/missing.txt", "fuzz/dir"],
  "readWorkspaceFile.path": ["fuzz/hello.txt", "fuzz/bin.dat", "fuzz/missing.txt", "fuzz/dir"],
  "downloadFile.path": ["fuzz/hello.txt", "fuzz/bin.dat", "fuzz/missing.txt", "fuzz/dir"],
  "downloadWorkspaceFile.path": ["fuzz/hello.txt", "fuzz/bin.dat", "fuzz/missing.txt", "fuzz/dir"],
  "deleteFile.path": ["fuzz/w.txt", "fuzz/up.bin", "fuzz/nothing-here", "fuzz/new"],
  "deleteWorkspaceFile.path": ["fuzz/w.txt", "fuzz/up.bin", "fuzz/nothing-here", "fuzz/new"],
  "listDirectory.path": [".", "fuzz", "fuzz/dir", "fuzz/hello.txt", "nowhere"],
  "listWorkspaceDirectory.path": [".", "fuzz", "fuzz/dir", "fuzz/hello.txt", "nowhere"],
  "uploadFile.path": ["fuzz/up.bin", "fuzz/up/deep.bin"],
  "uploadWorkspaceFile.path": ["fuzz/up.bin", "fuzz/up/deep.bin"],
  limit: [1, 2, 50, 200],
  language: ["python", "python", "javascript", "typescript"],
  "execCode.code": ["1+1", "1 + 1", "let x = 41; x + 1"],
  "execCode.context_id": ["{{ctx.own}}", "ctx-default-python"],
  "createContext.cwd": ["fuzz", "."],
  cursor: ["{{cursor.sb}}", "{{cursor.ws}}"],
  // The E2B-compatible API (e2b.ts): its templates, deadlines, queries and code.
  templateID: ["base", "code-interpreter-v1"],
  "e2bCreateSandbox.timeout": [60, 300],
  "e2bCreateSandboxLegacy.timeout": [60, 300],
  "e2bSetTimeout.timeout": [60, 3600],
  autoPause: [false, false, true],
  allow_internet_access: [true],
  network: [{}, { allowPublicTraffic: false }, { allowPublicTraffic: true, maskRequestHost: "x" }],
  envVars: [{ FUZZ: "1" }, {}],
  metadata: ["fuzz=1", "a=b&c=d"],
  "e2bCreateSandbox.metadata": [{ fuzz: "1" }, {}],
  "e2bCreateSandboxLegacy.metadata": [{ fuzz: "1" }, {}],
  state: ["running", "running,paused", "paused"],
  "e2bListSandboxes.limit": [1, 2, 100],
  template: ["base"],
  startedAfter: ["2020-01-01T00:00:00Z"],
  username: ["user"],
  "e2bReadFile.path": ["/home/user/fuzz/hello.txt", "fuzz/hello.txt", "/home/user/fuzz/missing.txt", "/home/user/fuzz", "~/fuzz/hello.txt"],
  "e2bWriteFiles.path": ["/home/user/fuzz/w.txt", "fuzz/e2b/deep/w.txt", "~/fuzz/w2.txt"],
  "e2bExecute.code": ["1+1", "print('fuzz')", "x = 41\nx + 1", "1/0"],
  "e2bExecute.context_id": ["{{ectx.own}}", null],
  "e2bExecute.language": ["python", null],
  env_vars: [{ FUZZ: "1" }, null],
  "e2bCreateContext.language": ["python", null],
  "e2bCreateContext.cwd": ["/home/user", "/home/user/fuzz", null],
};

export function hintFor(opId: string, field: string): readonly unknown[] | undefined {
  return HINTS[`${opId}.${field}`] ?? HINTS[field];
}

const types = (s: Schema): string[] => (s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type]);

/** A value valid for `schema`, preferring the field's hints. */
export function validValue(rng: Rng, opId: string, field: string, schema: Schema): unknown {
  const hint = hintFor(opId, field);
  if (hint) return rng.pick(hint);
  if (schema.enum) return rng.pick(schema.enum);
  const t = types(schema).filter((x) => x !== "null")[0] ?? "string";
  switch (t) {
    case "integer":
    case "number": {
      const lo = schema.minimum ?? 0;
      const hi = schema.maximum ?? lo + 100;
      return rng.int(lo, Math.min(hi, lo + 100));
    }
    case "boolean":
      return rng.chance(0.5);
    case "object":
      return validObject(rng, opId, schema);
    case "array":
      return [];
    default: {
      if (schema.pattern) return `fz-${rng.uint32().toString(36)}`;
      const min = schema.minLength ?? 1;
      return "f".repeat(Math.max(min, 1)).slice(0, schema.maxLength ?? 64);
    }
  }
}

/** An object with every required property and each optional one half the time. */
export function validObject(rng: Rng, opId: string, schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    if ((schema.required ?? []).includes(name) || rng.chance(0.5)) out[name] = validValue(rng, opId, name, sub);
  }
  return out;
}

/** A value that is probably wrong for `schema`, with a tag saying what it is. */
export function hostileValue(rng: Rng, schema: Schema): [string, unknown] {
  const t = types(schema);
  const kind = rng.weighted({ wrongType: 3, string: 5, huge: 0.4, number: 3, limit: 3 });
  if (kind === "wrongType") {
    const others = Object.keys(VALUES_OF_TYPE).filter((k) => !t.includes(k) && !(k === "integer" && t.includes("number")));
    const type = rng.pick(others);
    const v = rng.pick(VALUES_OF_TYPE[type]!);
    return [`wrong type ${type} ${JSON.stringify(v)}`, v];
  }
  if (kind === "string") {
    const [tag, s] = rng.pick(HOSTILE_STRINGS);
    return [`string ${tag}`, s];
  }
  if (kind === "huge") {
    const [tag, s] = rng.pick(HUGE_STRINGS);
    return [`string ${tag}`, s];
  }
  if (kind === "number") {
    const n = rng.pick(HOSTILE_NUMBERS);
    return [`number ${n}`, n];
  }
  // At and just past the schema's own limits.
  const limits: Array<[string, unknown]> = [];
  if (schema.minimum !== undefined) limits.push([`minimum-1`, schema.minimum - 1], [`minimum`, schema.minimum]);
  if (schema.maximum !== undefined) limits.push([`maximum`, schema.maximum], [`maximum+1`, schema.maximum + 1]);
  if (schema.minLength !== undefined) limits.push([`minLength-1`, "m".repeat(Math.max(0, schema.minLength - 1))]);
  if (schema.maxLength !== undefined && schema.maxLength <= 2 * 1024 * 1024) {
    limits.push([`maxLength`, "M".repeat(schema.maxLength)], [`maxLength+1`, "M".repeat(schema.maxLength + 1)]);
  }
  if (limits.length === 0) return [`null`, null];
  const [tag, v] = rng.pick(limits);
  return [`${tag}`, v];
}
