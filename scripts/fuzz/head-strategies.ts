/**
 * Strategies that change the request around its body: a path parameter, a
 * query value, a header, the method, or the HTTP framing itself (raw socket).
 */
import type { Rng } from "../lib/rng.ts";
import { type GenContext, isUpload, upload } from "./body-strategies.ts";
import { HOSTILE_PATHS, HOSTILE_STRINGS, HUGE_STRINGS } from "./corpus.ts";
import { assemble, type Draft, foreignIds, queryViolation } from "./draft.ts";
import { oddHttpCase } from "./http-odd.ts";
import { hostileValue } from "./values.ts";

/** The fuzzed Bay's e2b.sandbox_domain (main.ts): names under it are sandboxes' servers. */
export const FUZZ_SANDBOX_DOMAIN = "sbx.fuzz.test";

export function pathParam(rng: Rng, d: Draft, ctx: GenContext): void {
  const params = d.op.params.filter((p) => p.in === "path");
  const p = rng.pick(params);
  if (rng.chance(0.4)) {
    d.path[p.name] = rng.pick(foreignIds(d.op, p));
    d.mutation = `${p.name} = ${d.path[p.name]}`;
  } else {
    const [tag, s] = rng.chance(0.03) ? rng.pick(HUGE_STRINGS) : rng.pick(HOSTILE_STRINGS);
    d.path[p.name] = s;
    d.mutation = `${p.name} = ${tag}`;
    // fetch would resolve dot segments away; send those as they are.
    if (s === "." || s === ".." || s === "") d.transport = "raw";
  }
  d.reject.push(`${p.name} names nothing the caller owns`);
  if (isUpload(d.op)) upload(rng, d, ctx, "path-first");
}

export function query(rng: Rng, d: Draft, ctx: GenContext): void {
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
    const why = queryViolation(p, value, d.op.api.name === "e2b");
    if (why) d.reject.push(why);
  }
  if (isUpload(d.op)) upload(rng, d, ctx, "only-file");
}

export function headers(rng: Rng, d: Draft, _ctx: GenContext): void {
  const set = (name: string, value: string | undefined) => {
    d.headers = d.headers.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
    if (value !== undefined) d.headers.push([name, value]);
  };
  // The data plane of the E2B API is the sandbox token's, whoever the owner: only an owner's own calls are refused.
  const hasOwnId = Object.values(d.path).some((v) => /\{\{(sb|ws|esb)\.(own|idle|ext|managed|doomed)\}\}/.test(v)) && d.op.authenticated;
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
    "host-foreign",
    "host-sandbox",
    "forwarded",
    "cross-site",
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
    case "forwarded":
      // A request relayed by a proxy is not loopback: /metrics (no token configured) must refuse it.
      set(rng.pick(["X-Forwarded-For", "Forwarded"]), rng.pick(["203.0.113.7", "for=203.0.113.7", "127.0.0.1"]));
      if (d.op.id === "getMetrics") d.reject.push("/metrics relayed by a proxy");
      return;
    case "cross-site": {
      // A page of another site, through the victim's browser: anonymous mode serves no such request.
      const [name, value] = rng.pick([
        ["Origin", "https://evil.example"],
        ["Origin", "null"],
        ["Sec-Fetch-Site", "cross-site"],
        ["Sec-Fetch-Site", "same-site"],
      ] as const);
      set(name, value);
      d.mutation = `header ${name} ${value}`;
      d.reject.push("a browser request from another site");
      return;
    }
    case "host-sandbox":
      // A name under e2b.sandbox_domain (FUZZ_SANDBOX_DOMAIN): a sandbox's server, never Bay's API. The fixtures'
      // sandboxes are private (no traffic token here), so each is refused, whatever the operation.
      d.transport = "raw";
      d.raw = { ...d.raw, noHost: true };
      set(
        "Host",
        rng.pick([
          `8080-{{sb.own}}.${FUZZ_SANDBOX_DOMAIN}`,
          `8080-{{sb.other}}.${FUZZ_SANDBOX_DOMAIN}`,
          `8080-{{sb.gone}}.${FUZZ_SANDBOX_DOMAIN}`,
          `8123-{{sb.own}}.${FUZZ_SANDBOX_DOMAIN}`,
          `api.${FUZZ_SANDBOX_DOMAIN}`,
          `0-{{sb.own}}.${FUZZ_SANDBOX_DOMAIN}`,
          `8080-{{sb.own}}.x.${FUZZ_SANDBOX_DOMAIN}`,
          `8080-{{sb.own}}.${FUZZ_SANDBOX_DOMAIN.toUpperCase()}`,
        ]),
      );
      if (rng.chance(0.5)) set("e2b-traffic-access-token", rng.pick(["ta_{{sb.own}}_forged", "ea_{{sb.own}}_x", "x".repeat(300)]));
      d.reject.push("a sandbox host without its traffic token");
      return;
    case "host-foreign":
      // A DNS-rebinding page: anonymous mode serves only the configured host names.
      d.transport = "raw";
      d.raw = { ...d.raw, noHost: true };
      set("Host", rng.pick(["evil.example", "evil.example:8000", "127.0.0.1.nip.io"]));
      d.reject.push("a Host anonymous mode does not serve");
      return;
  }
}

export function method(rng: Rng, d: Draft, ctx: GenContext): void {
  const onPath = new Set(ctx.contract.operations.filter((o) => o.path === d.op.path).map((o) => o.method));
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

export function http(rng: Rng, d: Draft, ctx: GenContext): void {
  if (isUpload(d.op)) upload(rng, d, ctx, "path-first");
  const target = assemble(d, 0).target;
  const c = oddHttpCase(rng, d.method, target, ctx.limits.maxBodyBytes);
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
  // Credentials only matter where the spec asks for them (/health and /openapi.json do not).
  d.reject = c.mustReject && (c.mustReject !== "bad credentials" || d.op.authenticated) ? [c.mustReject] : [];
  d.json = undefined;
}
