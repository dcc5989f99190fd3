/**
 * The request generator: for a seed, an endless reproducible sequence of
 * requests, each aimed at one operation of the spec (chosen uniformly, so
 * every operation is covered) and built by one strategy that changes one part
 * of an otherwise valid request.
 */
import type { Rng } from "../lib/rng.ts";
import { BAD_JSON, HOSTILE_PATHS, HOSTILE_STRINGS, HUGE_STRINGS, ODD_CONTENT_TYPES } from "./corpus.ts";
import { assemble, baseDraft, type Draft, foreignIds, queryViolation } from "./draft.ts";
import { oddHttpCase } from "./http-odd.ts";
import { type Schema, validate } from "./json-schema.ts";
import { escapes, multipartCase } from "./multipart.ts";
import type { FuzzRequest } from "./request.ts";
import type { Contract, Operation } from "./spec.ts";
import { hintFor, hostileValue } from "./values.ts";

export interface Limits {
  maxBodyBytes: number;
  maxUploadBytes: number;
}

const STRATEGIES = {
  valid: 8,
  pathParam: 10,
  query: 10,
  bodyField: 16,
  bodyWhole: 9,
  headers: 9,
  // Multipart and replays apply to two operations each: weighted up to be seen as often as the rest.
  multipart: 30,
  method: 5,
  http: 8,
  replay: 15,
} as const;
type Strategy = keyof typeof STRATEGIES;

const isUpload = (op: Operation) => op.body?.contentType === "multipart/form-data";
const hasJsonBody = (op: Operation) => op.body?.contentType.includes("json") === true;
const pathFields = new Set(["path", "cwd"]);

export class RequestGenerator {
  constructor(
    private readonly contract: Contract,
    private readonly limits: Limits,
  ) {}

  /** Request number `index` of the sequence of `rng`'s seed. */
  next(rng: Rng, index: number): FuzzRequest {
    const op = rng.pick(this.contract.operations);
    const applicable = Object.fromEntries(Object.entries(STRATEGIES).filter(([s]) => this.applies(s as Strategy, op)));
    const strategy = rng.weighted(applicable) as Strategy;
    const d = baseDraft(rng, op, index, strategy);
    this[strategy](rng, d);
    if (d.json !== undefined && d.bodyText === undefined) this.judgeJson(d);
    return assemble(d, index);
  }

  private applies(s: Strategy, op: Operation): boolean {
    switch (s) {
      case "pathParam":
        return op.params.some((p) => p.in === "path");
      case "query":
        return op.params.some((p) => p.in === "query");
      case "bodyField":
        return hasJsonBody(op);
      case "multipart":
        return isUpload(op);
      case "replay":
        return op.params.some((p) => p.name === "Idempotency-Key");
      default:
        return true;
    }
  }

  /** Collects why the JSON value the server will parse (`sent`, default: the draft's body) breaks the body schema. */
  private judgeJson(d: Draft, sent: unknown = JSON.parse(JSON.stringify(d.json))): void {
    const schema = d.op.body?.schema;
    if (!schema) return;
    const errors = validate(schema, sent);
    if (errors.length) d.reject.push(`body breaks the schema: ${errors[0]}`);
    for (const f of pathFields) {
      const v = (sent as Record<string, unknown> | null)?.[f];
      if (typeof v === "string" && escapes(v)) d.reject.push(`body.${f} escapes /workspace`);
    }
  }

  private valid(rng: Rng, d: Draft): void {
    if (isUpload(d.op)) this.upload(rng, d, "path-first");
  }

  private upload(rng: Rng, d: Draft, only?: string): void {
    const validPath = String(rng.pick(hintFor(d.op.id, "path") ?? ["fuzz/up.bin"]));
    let c = multipartCase(rng, validPath, this.limits.maxUploadBytes);
    for (let i = 0; only && c.tag !== only && i < 200; i++) c = multipartCase(rng, validPath, this.limits.maxUploadBytes);
    d.mutation = d.strategy === "multipart" || d.strategy === "valid" ? `multipart ${c.tag}` : `${d.mutation}; multipart ${c.tag}`;
    d.bodyText = c.body;
    d.headers.push(["Content-Type", c.contentType]);
    if (c.tag === "query-path-only" || (c.tag !== "only-file" && rng.chance(0.2))) d.query.push(["path", validPath]);
    const pathInQuery = d.query.some(([k]) => k === "path");
    if (c.mustReject && !(c.tag === "only-file" && pathInQuery)) d.reject.push(c.mustReject);
  }

  private multipart(rng: Rng, d: Draft): void {
    this.upload(rng, d);
  }

  private pathParam(rng: Rng, d: Draft): void {
    const params = d.op.params.filter((p) => p.in === "path");
    const p = rng.pick(params);
    if (rng.chance(0.4)) {
      d.path[p.name] = rng.pick(foreignIds(d.op, p.name));
      d.mutation = `${p.name} = ${d.path[p.name]}`;
    } else {
      const [tag, s] = rng.chance(0.03) ? rng.pick(HUGE_STRINGS) : rng.pick(HOSTILE_STRINGS);
      d.path[p.name] = s;
      d.mutation = `${p.name} = ${tag}`;
      // fetch would resolve dot segments away; send those as they are.
      if (s === "." || s === ".." || s === "") d.transport = "raw";
    }
    d.reject.push(`${p.name} names nothing the caller owns`);
    if (isUpload(d.op)) this.upload(rng, d, "path-first");
  }

  private query(rng: Rng, d: Draft): void {
    const params = d.op.params.filter((p) => p.in === "query");
    const p = rng.pick(params);
    const others = d.query.filter(([k]) => k !== p.name);
    const kind = rng.weighted({ missing: 1, hostile: 6, duplicate: 1, unknown: 1, cursor: p.name === "cursor" ? 3 : 0, encoding: 1 });
    let value: string | undefined;
    switch (kind) {
      case "missing":
        d.query = others;
        d.mutation = `query ${p.name} missing`;
        break;
      case "hostile": {
        const [tag, v] =
          p.name === "path" && rng.chance(0.6)
            ? rng.pick(HOSTILE_PATHS)
            : rng.chance(0.5)
              ? rng.pick(HOSTILE_STRINGS)
              : hostileValue(rng, p.schema);
        value = typeof v === "string" ? v : JSON.stringify(v);
        d.query = [...others, [p.name, value]];
        d.mutation = `query ${p.name} = ${tag}`;
        break;
      }
      case "duplicate":
        d.query = [...others, [p.name, "fuzz/hello.txt"], [p.name, "../../etc/passwd"]];
        d.mutation = `query ${p.name} twice`;
        break;
      case "unknown":
        d.query.push(["unknown_param", "1"], ["__proto__", "x"]);
        d.mutation = "unknown query parameters";
        break;
      case "cursor": {
        const bad = rng.pick([
          ["another owner's cursor", "{{cursor.other}}"],
          ["cursor of a missing id", Buffer.from("sandbox-zzzzzzzzzzzz").toString("base64url")],
          ["cursor of junk bytes", Buffer.from([0xff, 0x00, 0xfe]).toString("base64url")],
          ["cursor of sql", Buffer.from("' OR 1=1 --").toString("base64url")],
          ["cursor not base64", "!!!@@@"],
          ["cursor 512", "A".repeat(512)],
          ["cursor 513", "A".repeat(513)],
        ] as const);
        value = bad[1];
        d.query = [...others, [p.name, value]];
        d.mutation = `query ${bad[0]}`;
        break;
      }
      case "encoding": {
        const raw = rng.pick(["%", "%zz", "%C0%AF", "%ED%A0%80", "%FF%FE", "+", "a%2Fb", "%2e%2e%2F"]);
        d.rawQuery = [...others.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`), `${p.name}=${raw}`].join("&");
        d.mutation = `query ${p.name} raw-encoded ${raw}`;
        return;
      }
    }
    if (kind !== "duplicate" && kind !== "unknown") {
      const why = queryViolation(p, value);
      if (why) d.reject.push(why);
    }
    if (isUpload(d.op)) this.upload(rng, d, "only-file");
  }

  private bodyField(rng: Rng, d: Draft): void {
    const schema = d.op.body!.schema;
    const obj: Record<string, unknown> = { ...((d.json as Record<string, unknown> | undefined) ?? {}) };
    d.json = obj;
    if (!d.headers.some(([k]) => k === "Content-Type")) d.headers.push(["Content-Type", "application/json"]);
    const props = Object.entries(schema.properties ?? {});
    const kind = rng.weighted({
      value: 8,
      drop: 1,
      extra: 1,
      map: props.some(([, s]) => typeof s.additionalProperties === "object") ? 2 : 0,
    });
    if (kind === "drop") {
      const name = rng.pick(props)[0];
      delete obj[name];
      d.mutation = `body.${name} dropped`;
    } else if (kind === "extra") {
      const name = rng.pick(["extra", "__proto__", "constructor", "owner", "id"]);
      obj[name] = rng.pick([1, "x", { a: 1 }]);
      d.mutation = `body.${name} added`;
    } else if (kind === "map") {
      const [name] = rng.pick(props.filter(([, s]) => typeof s.additionalProperties === "object"));
      const [tag, s] = rng.pick(HOSTILE_STRINGS);
      const variants: Array<[string, unknown]> = [
        [`key ${tag}`, { [s]: "v" }],
        [`value ${tag}`, { K: s }],
        ["value of wrong type", { K: 1 }],
        ["1000 entries", Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`K${i}`, "v"]))],
        ["key with =", { "A=B": "c" }],
      ];
      const [vt, v] = rng.pick(variants);
      obj[name] = v;
      d.mutation = `body.${name} ${vt}`;
    } else {
      const [name, sub] = rng.pick(props);
      const [tag, v] = pathFields.has(name) && rng.chance(0.5) ? rng.pick(HOSTILE_PATHS) : hostileValue(rng, sub as Schema);
      obj[name] = v;
      d.mutation = `body.${name} = ${tag}`;
    }
  }

  private bodyWhole(rng: Rng, d: Draft): void {
    if (isUpload(d.op)) {
      d.headers.push(["Content-Type", rng.pick(["application/json", "text/plain", "application/octet-stream"])]);
      d.bodyText = '{"path":"fuzz/x","file":"abc"}';
      d.mutation = "upload sent as a non-multipart body";
      d.reject.push("upload without a multipart body");
      return;
    }
    const setType = (ct: string | undefined) => {
      d.headers = d.headers.filter(([k]) => k !== "Content-Type");
      if (ct !== undefined) d.headers.push(["Content-Type", ct]);
    };
    const valid = JSON.stringify(d.json ?? {});
    if (!hasJsonBody(d.op)) {
      const big = rng.chance(0.3);
      d.bodyText = big ? " ".repeat(this.limits.maxBodyBytes + 1) : '{"unexpected":true}';
      setType("application/json");
      d.mutation = big ? "over-limit body on an operation without a body" : "body on an operation without a body";
      if (d.method === "GET" || d.method === "HEAD") d.transport = "raw";
      return;
    }
    const kind = rng.weighted({ badJson: 5, empty: 1, noType: 1, oddType: 2, atLimit: 1, overLimit: 1, chunked: 1 });
    switch (kind) {
      case "badJson": {
        const [tag, text] = rng.pick(BAD_JSON);
        d.bodyText = text;
        setType("application/json");
        d.mutation = `bad JSON ${tag}`;
        this.judgeText(d, text);
        return;
      }
      case "empty":
        d.bodyText = "";
        d.mutation = "empty body";
        this.judgeText(d, "");
        return;
      case "noType":
        d.bodyText = new TextEncoder().encode(valid);
        setType(undefined);
        d.mutation = "JSON body without Content-Type";
        return;
      case "oddType": {
        const ct = rng.pick(ODD_CONTENT_TYPES);
        d.bodyText = valid;
        setType(ct);
        d.mutation = `Content-Type ${ct}`;
        return;
      }
      case "atLimit":
      case "overLimit": {
        const size = this.limits.maxBodyBytes + (kind === "overLimit" ? 1 : 0);
        d.bodyText = valid + " ".repeat(Math.max(0, size - Buffer.byteLength(valid)));
        setType("application/json");
        d.mutation = kind === "atLimit" ? "body exactly max_body_bytes" : "body max_body_bytes + 1";
        if (kind === "overLimit") d.reject.push("body over max_body_bytes");
        else this.judgeText(d, valid);
        return;
      }
      case "chunked":
        d.transport = "raw";
        d.raw = { noLength: true };
        setType("application/json");
        d.headers.push(["Transfer-Encoding", "chunked"]);
        d.bodyText = `${Buffer.byteLength(valid).toString(16)}\r\n${valid}\r\n0\r\n\r\n`;
        d.mutation = "chunked JSON body";
        this.judgeText(d, valid);
        return;
    }
  }

  /** The verdict for a body sent as text: not JSON, a missing required body, or JSON breaking the schema. */
  private judgeText(d: Draft, text: string): void {
    const t = text.replace(/^\ufeff/, "");
    if (t.trim() === "") {
      if (d.op.body?.required) d.reject.push("required body missing");
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(t);
    } catch {
      d.reject.push("body is not JSON");
      return;
    }
    this.judgeJson(d, value);
  }

  private headers(rng: Rng, d: Draft): void {
    const set = (name: string, value: string | undefined) => {
      d.headers = d.headers.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
      if (value !== undefined) d.headers.push([name, value]);
    };
    const hasOwnId = Object.values(d.path).some((v) => /\{\{(sb|ws)\.(own|idle|ext|managed|doomed)\}\}/.test(v));
    const kind = rng.pick([
      "rid-128",
      "rid-129",
      "rid-space",
      "rid-empty",
      "rid-quote",
      "bearer-garbage",
      "bearer-huge",
      "basic",
      "owner-other",
      "owner-none",
      "owner-hostile",
      "idem-invalid",
      "accept-odd",
      "content-encoding",
    ] as const);
    d.mutation = `header ${kind}`;
    switch (kind) {
      case "rid-128":
        set("X-Request-Id", `r${"x".repeat(127)}`);
        return;
      case "rid-129":
        set("X-Request-Id", "r".repeat(129));
        return;
      case "rid-space":
        set("X-Request-Id", "a b");
        return;
      case "rid-empty":
        set("X-Request-Id", "");
        return;
      case "rid-quote":
        set("X-Request-Id", `"';<>\\`);
        return;
      case "bearer-garbage":
      case "bearer-huge":
        set("Authorization", kind === "bearer-huge" ? `Bearer ${"t".repeat(10_000)}` : "Bearer not-a-real-token-0123456789");
        if (d.op.authenticated) d.reject.push("bad bearer credentials");
        return;
      case "basic":
        set("Authorization", "Basic YWxpY2U6cGFzc3dvcmQ=");
        return;
      case "owner-other":
        set("X-Owner", "bob");
        if (hasOwnId) d.reject.push("another owner's resource");
        return;
      case "owner-none":
        set("X-Owner", undefined);
        if (hasOwnId) d.reject.push("another owner's resource");
        return;
      case "owner-hostile": {
        const [tag, s] = rng.pick(HOSTILE_STRINGS.filter(([, s]) => /^[\x20-\x7e]*$/.test(s)));
        d.mutation = `header X-Owner ${tag}`;
        set("X-Owner", s);
        if (hasOwnId && s !== "alice") d.reject.push("another owner's resource");
        return;
      }
      case "idem-invalid": {
        const v = rng.pick(["a b", "k".repeat(129), "../x", "ü"]);
        if (v === "ü") {
          d.transport = "raw";
          set("Idempotency-Key", Buffer.from(v, "utf8").toString("latin1"));
        } else set("Idempotency-Key", v);
        if (d.op.params.some((p) => p.name === "Idempotency-Key")) d.reject.push("Idempotency-Key breaks its pattern");
        return;
      }
      case "accept-odd":
        set("Accept", rng.pick(["text/event-stream", "application/xml", "*/*;q=0", "application/json;q=0"]));
        return;
      case "content-encoding":
        set("Content-Encoding", rng.pick(["gzip", "br", "identity", "x-unknown"]));
        return;
    }
  }

  private method(rng: Rng, d: Draft): void {
    const onPath = new Set(this.contract.operations.filter((o) => o.path === d.op.path).map((o) => o.method));
    const kind = rng.weighted({ wrong: 4, head: d.op.method === "GET" ? 2 : 0, options: 1 });
    if (kind === "head") {
      d.method = "HEAD";
      d.mutation = "HEAD";
      return;
    }
    if (kind === "options") {
      d.method = "OPTIONS";
      d.mutation = "OPTIONS";
      return;
    }
    const choices = ["GET", "POST", "PUT", "PATCH", "DELETE"].filter((m) => !onPath.has(m));
    if (choices.length === 0) return;
    d.method = rng.pick(choices);
    d.mutation = `method ${d.method}`;
    if (d.method === "GET" && d.json !== undefined) d.transport = "raw";
    d.reject.push(`${d.method} is not defined on ${d.op.path}`);
  }

  private http(rng: Rng, d: Draft): void {
    if (isUpload(d.op)) this.upload(rng, d, "path-first");
    const target = assemble(d, 0).target;
    const c = oddHttpCase(rng, d.method, target, this.limits.maxBodyBytes);
    d.transport = "raw";
    d.strategy = "http";
    d.mutation = `raw ${c.tag}`;
    d.method = c.method;
    d.rawQuery = undefined;
    d.query = [];
    // The case's target is complete: keep the template out of it.
    d.op = { ...d.op, path: c.target.split("?")[0]! };
    const q = c.target.includes("?") ? c.target.slice(c.target.indexOf("?") + 1) : "";
    if (q) d.rawQuery = q;
    d.path = {};
    const contentType = d.headers.find(([k]) => k === "Content-Type");
    d.headers = c.headers;
    if (c.body !== undefined) d.bodyText = c.body;
    else if (d.bodyText !== undefined || d.json !== undefined) {
      d.bodyText ??= JSON.stringify(d.json);
      if (contentType && !d.headers.some(([k]) => k === "Content-Type")) d.headers.push(contentType);
    }
    if (c.raw) d.raw = c.raw;
    d.syntax = c.syntax;
    d.reject = c.mustReject ? [c.mustReject] : [];
    d.json = undefined;
  }

  private replay(rng: Rng, d: Draft): void {
    d.headers = d.headers.filter(([k]) => k !== "Idempotency-Key");
    d.headers.push(["Idempotency-Key", `fz-replay-${rng.uint32().toString(36)}`]);
    d.repeat = true;
    if (rng.chance(0.5)) {
      d.json = rng.pick([
        { ttl: -5 },
        { profile: "no-such-profile" },
        { size_limit_mb: 0 },
        { workspace_id: "{{ws.other}}" },
        { extra: 1 },
      ]);
      d.mutation = `replay of ${JSON.stringify(d.json)}`;
    } else d.mutation = "replay of a valid create";
    if (!d.headers.some(([k]) => k === "Content-Type")) d.headers.push(["Content-Type", "application/json"]);
  }
}
