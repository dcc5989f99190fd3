/**
 * The E2B-compatible API's side of the fuzzer (openapi/e2b.v1.yaml, under
 * E2B_BASE): its fixtures (a live E2B sandbox of alice's with files, a running
 * kernel and code contexts, its envd access token and signed file URLs; bob's
 * sandbox and token; a killed one; a doomed one that valid kills consume), the
 * ids and credentials its requests carry, the strategy that gets its data-plane
 * credentials wrong, and the upkeep and final cleanup through the API itself.
 * Placeholders are `{{esb.*}}` (sandboxes), `{{etok.*}}` / `{{etta.*}}` (access
 * and traffic tokens), `{{ectx.*}}` (contexts) and `{{esig.*}}` (signed queries).
 */
import { signFileUrl } from "../../src/bay/e2b/credentials.ts";
import type { Rng } from "../lib/rng.ts";
import { isSharedAccess, setHeader, sharedAccess } from "./credentials.ts";
import type { Draft } from "./draft.ts";
import { escapes } from "./multipart.ts";
import type { FuzzRequest, Resolver } from "./request.ts";
import type { Outcome } from "./send.ts";
import type { Operation, Param } from "./spec.ts";

/** Where Bay serves the E2B API (its default `e2b.prefix`, the spec's server path). */
export const E2B_BASE = "/e2b";
const HOME = "/home/user";
/** The file the fixtures write and signed read URLs name. */
const HELLO = `${HOME}/fuzz/hello.txt`;
const SIGNED_WRITE = `${HOME}/fuzz/signed.txt`;

type Json = Record<string, any>;

/** A JSON call to the E2B API; throws unless the status is `expect`. */
export async function e2bCall(
  url: string,
  headers: Record<string, string>,
  method: string,
  path: string,
  body?: unknown,
  expect = 200,
): Promise<Json> {
  const raw = body instanceof Uint8Array || typeof body === "string";
  const res = await fetch(url + E2B_BASE + path, {
    method,
    headers: {
      ...headers,
      ...(body === undefined ? {} : { "content-type": raw ? "application/octet-stream" : "application/json" }),
    },
    ...(body === undefined ? {} : { body: raw ? (body as string) : JSON.stringify(body) }),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`fixture E2B ${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text && (res.headers.get("content-type") ?? "").includes("application/json") ? (JSON.parse(text) as Json) : {};
}

const owner = (o: string) => ({ "x-owner": o });
const envd = (v: Record<string, string>) => ({ "e2b-sandbox-id": v["esb.own"]!, "x-access-token": v["etok.own"]! });

const createSandbox = (url: string, o: string, timeout = 86400) =>
  e2bCall(url, owner(o), "POST", "/v2/sandboxes", { templateID: "code-interpreter-v1", timeout }, 201);

/** The code contexts of the live sandbox: one to use, one a valid delete may consume. */
async function createContexts(url: string, v: Record<string, string>): Promise<Record<string, string>> {
  const make = async () => (await e2bCall(url, envd(v), "POST", "/contexts", { language: "python" })).id as string;
  return { "ectx.own": await make(), "ectx.doomed": await make() };
}

/** A signed file URL's query, as the SDKs' `downloadUrl` / `uploadUrl` make it. */
function signedQuery(path: string, operation: "read" | "write", token: string, expiration: number, signedPath = path): string {
  const signature = signFileUrl({ path: signedPath, operation, user: "user", expiration }, token);
  const q = new URLSearchParams({ path, username: "user", signature, signature_expiration: String(expiration) });
  return q.toString();
}

/** Creates the E2B fixtures into `v` (after Bay's: bob's context `ctx.other` is reused as another sandbox's context). */
export async function createE2bFixtures(url: string, v: Record<string, string>): Promise<void> {
  const own = await createSandbox(url, "alice");
  v["esb.own"] = own.sandboxID;
  v["etok.own"] = own.envdAccessToken;
  v["etta.own"] = own.trafficAccessToken;
  // The first data-plane calls start its Ship: a file to read, a kernel that ran.
  await e2bCall(url, envd(v), "POST", `/files?path=${encodeURIComponent(HELLO)}`, "hello\n");
  await e2bCall(url, envd(v), "POST", "/execute", { code: "1+1" });
  Object.assign(v, await createContexts(url, v));
  const other = await e2bCall(url, owner("bob"), "POST", "/v2/sandboxes", { templateID: "base", timeout: 86400 }, 201);
  v["esb.other"] = other.sandboxID;
  v["etok.other"] = other.envdAccessToken;
  v["ectx.other"] = v["ctx.other"]!;
  v["ectx.unknown"] = "ctx-00000000e2bfuzz";
  const gone = await createSandbox(url, "alice");
  await e2bCall(url, owner("alice"), "DELETE", `/sandboxes/${gone.sandboxID}`, undefined, 204);
  v["esb.gone"] = gone.sandboxID;
  v["etok.gone"] = gone.envdAccessToken;
  v["esb.doomed"] = (await createSandbox(url, "alice")).sandboxID;
  v["etok.forged"] = `ea_${own.sandboxID}_${"A".repeat(43)}`;
  const day = Math.floor(Date.now() / 1000) + 86400;
  v["esig.read"] = signedQuery(HELLO, "read", own.envdAccessToken, day);
  v["esig.write"] = signedQuery(SIGNED_WRITE, "write", own.envdAccessToken, day);
  v["esig.expired"] = signedQuery(HELLO, "read", own.envdAccessToken, Math.floor(Date.now() / 1000) - 60);
  v["esig.wrongpath"] = signedQuery(`${HOME}/fuzz/bin.dat`, "read", own.envdAccessToken, day, HELLO);
  v["esig.gone"] = signedQuery(HELLO, "read", gone.envdAccessToken, day);
  v["esig.junk"] = `path=${encodeURIComponent(HELLO)}&signature=v1_${"A".repeat(43)}`;
  v["esig.unsigned"] = `path=${encodeURIComponent(HELLO)}&signature_expiration=${day}&signature=`;
}

/**
 * Whether an E2B path leaves the sandbox's files: E2B paths are absolute under
 * /home/user (or /workspace), `~/` or relative to the home; anything else absolute,
 * NUL, or `..` above the home escapes.
 */
export function e2bEscapes(path: string): boolean {
  let p = path === "~" ? "" : path.startsWith("~/") ? path.slice(2) : path;
  if (p.startsWith("/")) {
    const root = [HOME, "/workspace"].find((r) => p === r || p.startsWith(`${r}/`));
    if (!root) return true;
    p = p.slice(root.length).replace(/^\/+/, "");
  }
  return escapes(p);
}

/** An operation of the E2B API. */
export const isE2b = (op: Operation): boolean => op.api.name === "e2b";
/** The sandbox's data plane (envd's routes, the code interpreter): a sandbox's token, not an owner, authorizes it. */
export const isDataPlane = (op: Operation): boolean => isE2b(op) && !op.authenticated;
const isFiles = (op: Operation) => op.path === `${E2B_BASE}/files`;

/** A valid value for a path parameter of an E2B operation. */
export function e2bValidId(rng: Rng, op: Operation, param: Param): string {
  if (param.name === "contextID") return op.id === "e2bDeleteContext" ? "{{ectx.doomed}}" : "{{ectx.own}}";
  if (param.name === "templateID") return rng.pick(["base", "code-interpreter-v1", "python-default"]);
  if (param.name === "alias") return rng.pick(["base", "code-interpreter-v1"]);
  if (param.name === "sandboxID") {
    // Kills and deadlines consume the doomed sandbox; everything else reads the live one.
    if (op.id === "e2bKillSandbox" || op.id === "e2bSetTimeout") return "{{esb.doomed}}";
    return "{{esb.own}}";
  }
  throw new Error(`no E2B fixture for path parameter ${param.name} of ${op.id}`);
}

/** Values that name nothing the caller may use. */
export function e2bForeignIds(param: Param): string[] {
  if (param.name === "contextID") return ["{{ectx.unknown}}", "{{ectx.other}}"];
  if (param.name === "templateID" || param.name === "alias") return ["no-such-template", "BASE", "base.", "aliases"];
  return ["{{esb.other}}", "{{esb.gone}}", "{{sb.unknown}}"];
}

/** Makes a base draft of an E2B operation valid: the data plane's credentials, a file path, a file's bytes. */
export function e2bBaseDraft(rng: Rng, d: Draft): void {
  const op = d.op;
  // A signed URL is its own strategy (e2bAccess): a valid request carries no stray signature.
  d.query = d.query.filter(([k]) => k !== "signature" && k !== "signature_expiration" && k !== "nextToken");
  if (isFiles(op) && !d.query.some(([k]) => k === "path"))
    d.query.push(["path", rng.pick(op.method === "GET" ? [HELLO, "fuzz/hello.txt"] : [`${HOME}/fuzz/w.txt`, "fuzz/e2b/w.txt"])]);
  if (isDataPlane(op) && (op.id !== "e2bHealth" || rng.chance(0.5))) {
    d.headers.push(["E2b-Sandbox-Id", "{{esb.own}}"], ["X-Access-Token", "{{etok.own}}"]);
  }
  // A run names a context or a language, not both (E2B's interpreter refuses both with 400).
  const run = d.json as { context_id?: unknown; language?: unknown } | undefined;
  if (op.id === "e2bExecute" && run?.context_id && run.language) run.language = null;
  if (op.id === "e2bWriteFiles") {
    d.bodyText = rng.pick(["hello from the fuzzer\n", "", "é😀\u0000"]);
    d.headers.push(["Content-Type", "application/octet-stream"]);
  }
}

/** The credentials of a data-plane request gotten wrong (or right another way): token, sandbox id, user, signed URL. */
export function e2bAccess(rng: Rng, d: Draft): void {
  const files = isFiles(d.op);
  const interpreter = !files && d.op.id !== "e2bHealth";
  const kind = rng.weighted({
    noToken: 2,
    forged: 2,
    otherToken: 2,
    otherId: 2,
    gone: 2,
    junkId: 2,
    tokenOnly: 2,
    traffic: 2,
    root: files ? 2 : 0,
    signed: files ? 6 : 0,
  });
  d.mutation = `E2B access ${kind}`;
  if (isSharedAccess(kind)) {
    sharedAccess(rng, d, kind);
    return;
  }
  const refuse = (why: string): void => {
    d.reject.push(why);
  };
  switch (kind) {
    case "junkId":
      setHeader(d, "E2b-Sandbox-Id", rng.pick(["", "x".repeat(129), "../../v1/sandboxes", "{{sb.unknown}}", "sandbox-%00"]));
      setHeader(d, "X-Access-Token", "{{etok.own}}");
      refuse("a sandbox id its token is not for");
      return;
    case "traffic":
      // The traffic token opens the code interpreter only.
      setHeader(d, "X-Access-Token", undefined);
      setHeader(d, "E2B-Traffic-Access-Token", "{{etta.own}}");
      if (!interpreter) {
        // Named, so the request is the sandbox's (GET /health naming none is the API's own, open to all).
        setHeader(d, "E2b-Sandbox-Id", "{{esb.own}}");
        refuse("the traffic token outside the code interpreter");
      }
      return;
    case "signed": {
      setHeader(d, "E2b-Sandbox-Id", rng.chance(0.2) ? "{{esb.own}}" : undefined);
      setHeader(d, "X-Access-Token", undefined);
      const good = d.op.method === "GET" ? "read" : "write";
      const which = rng.weighted({
        [good]: 4,
        [good === "read" ? "write" : "read"]: 1,
        expired: 1,
        wrongpath: 1,
        gone: 1,
        junk: 1,
        unsigned: 1,
      });
      d.rawQuery = `{{esig.${which}}}`;
      // As the SDKs build them, at the origin root; or under the prefix, which serves them too.
      d.atRoot = rng.chance(0.5);
      d.mutation = `E2B signed URL ${which === good ? "valid" : which}${d.atRoot ? " at the root" : ""}`;
      if (which !== good) refuse(`signed URL ${which}`);
      return;
    }
  }
}

interface CreatedContext {
  id: string;
  headers: Record<string, string>;
}

const headerOf = (req: FuzzRequest, name: string, resolve: Resolver): string | undefined => {
  const v = req.headers.find(([k]) => k.toLowerCase() === name)?.[1];
  return v === undefined ? undefined : resolve(v);
};

/** Tracks what fuzzed E2B requests created or consumed, and restores the E2B fixtures between batches. */
export class E2bKeeper {
  private readonly sandboxes: Array<{ id: string; owner: string | undefined }> = [];
  private readonly contexts: CreatedContext[] = [];
  private doomedUsed = false;
  private ctxDoomedUsed = false;

  constructor(private readonly values: Record<string, string>) {}

  note(req: FuzzRequest, resolve: Resolver, o: Outcome): void {
    if (o.kind !== "response") return;
    const ok = o.status >= 200 && o.status < 300;
    let id: unknown;
    try {
      if (ok && (req.aim.startsWith("e2bCreateSandbox") || req.aim === "e2bCreateContext"))
        id = (JSON.parse(new TextDecoder().decode(o.body)) as Json)[req.aim === "e2bCreateContext" ? "id" : "sandboxID"];
    } catch {
      // not JSON: the checks report it
    }
    if (typeof id === "string" && req.aim === "e2bCreateContext") {
      const headers: Record<string, string> = {};
      for (const h of ["e2b-sandbox-id", "x-access-token", "e2b-traffic-access-token"]) {
        const v = headerOf(req, h, resolve);
        if (v !== undefined) headers[h] = v;
      }
      this.contexts.push({ id, headers });
    } else if (typeof id === "string") this.sandboxes.push({ id, owner: headerOf(req, "x-owner", resolve) });
    if (ok && (req.aim === "e2bKillSandbox" || req.aim === "e2bSetTimeout") && req.target.includes("{{esb.doomed}}"))
      this.doomedUsed = true;
    if (ok && req.aim === "e2bDeleteContext" && req.target.includes("{{ectx.doomed}}")) this.ctxDoomedUsed = true;
  }

  async maintain(url: string): Promise<void> {
    for (const c of this.contexts.splice(0)) await quietly(url, "DELETE", `/contexts/${encodeURIComponent(c.id)}`, c.headers);
    for (const s of this.sandboxes.splice(0))
      await quietly(url, "DELETE", `/sandboxes/${encodeURIComponent(s.id)}`, s.owner === undefined ? {} : owner(s.owner));
    if (this.doomedUsed) {
      // A deadline set on it may be far off: it goes now, and a fresh one takes its place.
      await quietly(url, "DELETE", `/sandboxes/${this.values["esb.doomed"]}`, owner("alice"));
      this.values["esb.doomed"] = (await createSandbox(url, "alice")).sandboxID;
      this.doomedUsed = false;
    }
    if (this.ctxDoomedUsed) {
      this.values["ectx.doomed"] = (await e2bCall(url, envd(this.values), "POST", "/contexts", { language: "python" })).id;
      this.ctxDoomedUsed = false;
    }
  }
}

async function quietly(url: string, method: string, path: string, headers: Record<string, string>): Promise<void> {
  await fetch(url + E2B_BASE + path, { method, headers, signal: AbortSignal.timeout(60_000) })
    .then((r) => r.arrayBuffer())
    .catch(() => {});
}

/** Kills every sandbox of `owners` through the E2B API, as its clients would (Bay's own sweep follows). */
export async function killE2bSandboxes(url: string, owners: string[]): Promise<void> {
  for (const o of owners) {
    const killed = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const list = (await e2bCall(url, owner(o), "GET", "/v2/sandboxes?limit=100")) as unknown as Array<{ sandboxID: string }>;
      const fresh = list.filter((s) => !killed.has(s.sandboxID));
      if (fresh.length === 0) break;
      for (const { sandboxID } of fresh) {
        killed.add(sandboxID);
        const res = await fetch(`${url}${E2B_BASE}/sandboxes/${sandboxID}`, {
          method: "DELETE",
          headers: owner(o),
          signal: AbortSignal.timeout(120_000),
        });
        await res.arrayBuffer();
        if (res.status !== 204 && res.status !== 404) throw new Error(`killing E2B sandbox ${sandboxID} of ${o}: ${res.status}`);
      }
    }
  }
}

/** The sandbox an E2B request touches, if it names one: by its path, its E2b-Sandbox-Id or its token. */
export function e2bSandboxOf(req: FuzzRequest, target: string, resolve: Resolver): string | undefined {
  const control = new RegExp(`^${E2B_BASE}/(?:v2/)?sandboxes/([^/?]+)`).exec(target)?.[1];
  if (control) return control;
  if (!target.startsWith(`${E2B_BASE}/`)) return undefined;
  try {
    const id = headerOf(req, "e2b-sandbox-id", resolve);
    if (id) return id;
    const token = headerOf(req, "x-access-token", resolve) ?? headerOf(req, "e2b-traffic-access-token", resolve);
    return token ? /^(?:ea|ta)_([^_]+)_/.exec(token)?.[1] : undefined;
  } catch {
    return undefined;
  }
}
