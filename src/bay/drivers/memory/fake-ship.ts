/**
 * The in-memory fake Ship: what a memory-driver container runs. An HTTP server on
 * 127.0.0.1 (an ephemeral port) speaking the Ship protocol of src/protocol/ship
 * with the session credentials its container was started with: /health is open,
 * every other route wants `Authorization: Bearer <bearer key or secret>` (401 otherwise; answers prove the nonce), and
 * /meta names the session. Requests are checked with the protocol's own schemas.
 *
 * Behind the routes: a tiny Python (fake-python.ts), a tiny shell (fake-shell.ts)
 * and the file routes, all on the container's workspace volume in the engine's
 * MemoryVolumeFiles, the same store the workspace data plane reads, so data
 * written through a sandbox outlives its container. Where the fake is stricter
 * than Ship, it says so: symlinks are refused as the data plane refuses them, and
 * paths outside /workspace do not exist.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { z } from "zod";
import {
  MAX_NONCE_LENGTH,
  NONCE_HEADER,
  PROOF_HEADER,
  SHIP_API_VERSION,
  type ShipCredentials,
  shipBearer,
  shipOperations as ops,
  shipProof,
} from "../../../protocol/ship/index.ts";
import { BayError, ERROR_STATUS, type ErrorCode } from "../../errors.ts";
import type { VolumeFiles, VolumeRef } from "../driver.ts";
import { fileErrors } from "../volume-walk.ts";
import { FakeContexts, LANGUAGES, type Language } from "./fake-contexts.ts";
import { type FollowEvent, FakeProcesses } from "./fake-processes.ts";
import { FakePythonKernel, type KernelHost } from "./fake-python.ts";
import { PyError } from "./fake-python-parse.ts";
import { runShell, type ShellHost } from "./fake-shell.ts";
import { FakeTerminals, type TerminalSocketData } from "./fake-terminal.ts";
import { checkWatchRoot, type WatchEvent, watchTree } from "./fake-watch.ts";

/** How an image's fake Ship deviates from a well-behaved one, to test Bay's readiness checks. */
export interface FakeShipQuirks {
  /** /meta's runtime.api_version (default the protocol's). */
  apiVersion?: string;
  /** The capabilities /meta lists (default all three). */
  capabilities?: Array<"python" | "shell" | "filesystem">;
  /** The languages /meta lists (default all three). */
  languages?: Language[];
  /** /health never answers 200: the runtime never becomes ready. */
  neverHealthy?: boolean;
}

export interface FakeShipOptions {
  credentials: ShipCredentials;
  files: VolumeFiles;
  volume: VolumeRef;
  quirks?: FakeShipQuirks;
  /** Largest upload accepted (Ship's SHIP_MAX_UPLOAD_BYTES). */
  maxUploadBytes: number;
  /** Code contexts that may be created (Ship's SHIP_MAX_CONTEXTS; default 8). */
  maxContexts?: number;
  /** Appends a line to the container's log. */
  log(line: string): void;
  /** How `time.sleep` and `sleep` wait (default: real time); ends early when `signal` aborts. */
  sleep?: (seconds: number, signal: AbortSignal) => Promise<void>;
}

const CAPABILITIES = {
  filesystem: { operations: ["read_file", "write_file", "delete", "list_dir", "upload", "download", "watch"] },
  shell: {
    operations: [
      "exec",
      "background",
      "list_processes",
      "get_process",
      "kill_process",
      "process_output",
      "process_stdin",
      "process_signal",
      "terminal",
    ],
  },
  python: { operations: ["exec"] },
};
/** Changes one watch reports per poll before it counts the rest as dropped (Ship's SHIP_WATCH_QUEUE default). */
const WATCH_QUEUE = 1024;
const WATCH_POLL_MS = 50;
/** Ship's error codes; anything else leaves the fake as internal_error. */
const SHIP_CODES = new Set<ErrorCode>([
  "validation_error",
  "invalid_path",
  "unauthorized",
  "conflict",
  "file_not_found",
  "not_found",
  "conflict",
  "payload_too_large",
  "quota_exceeded",
  "internal_error",
  "timeout",
]);
const LIST_LIMIT = 10_000;
/** Decoded bytes of one stdin write (Ship's SHIP_MAX_STDIN_BYTES default). */
const STDIN_LIMIT = 1024 * 1024;
const digest = (s: string) => createHash("sha256").update(s).digest();

/** Resolves after `seconds`, or rejects once `signal` aborts. */
function sleep(seconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, Math.max(0, seconds) * 1000);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Ship's path rule: relative, no NUL, no escape; "." is the root. */
function normalize(path: string): string {
  const invalid = (reason: string) =>
    new BayError("invalid_path", `invalid path ${JSON.stringify(path)}: ${reason}`, { details: { path, reason } });
  if (path.includes("\0")) throw invalid("contains a NUL byte");
  if (path === "") throw invalid("empty path");
  if (path.startsWith("/")) throw invalid("absolute paths are not allowed");
  const parts: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (parts.length === 0) throw invalid("escapes the workspace");
      parts.pop();
    } else parts.push(seg);
  }
  return parts.length === 0 ? "." : parts.join("/");
}

/** A running fake Ship. */
export class FakeShip {
  private readonly alive = new AbortController();
  private readonly contexts: FakeContexts;
  private readonly processes: FakeProcesses;
  private readonly expected: Buffer[];
  private readonly secret: string;
  private readonly terminals: FakeTerminals;
  /** The workspace and clock the kernel, the shell and background commands share. */
  private readonly host: ShellHost;

  private constructor(
    private readonly o: FakeShipOptions,
    private readonly server: ReturnType<typeof Bun.serve<TerminalSocketData>>,
  ) {
    this.secret = o.credentials.secret;
    this.expected = [digest(shipBearer(this.secret)), digest(this.secret)];
    const names = async (p: string) =>
      (await o.files.list(o.volume, p, { maxEntries: LIST_LIMIT, timeoutMs: 60_000 })).entries.map((e) => e.name);
    this.host = {
      readText: async (p) => new TextDecoder().decode(await this.readBytes(p)),
      writeText: (p, text) => this.writeBytes(p, new TextEncoder().encode(text)),
      list: names,
      remove: (p) => o.files.remove(o.volume, p),
      sleep: (s, signal) => (o.sleep ?? sleep)(s, AbortSignal.any([signal, this.alive.signal])),
    };
    this.contexts = new FakeContexts({
      newPython: () => new FakePythonKernel(pythonHost(this.host)),
      maxContexts: o.maxContexts ?? 8,
      checkCwd: (cwd) => this.directory(cwd),
    });
    this.processes = new FakeProcesses(this.host, this.alive.signal);
    this.terminals = new FakeTerminals(this.host, this.alive.signal);
  }

  /** Starts serving on 127.0.0.1:`port` (0: any free port). */
  static start(o: FakeShipOptions, port = 0): FakeShip {
    let ship: FakeShip | null = null;
    const server = Bun.serve<TerminalSocketData>({
      hostname: "127.0.0.1",
      port,
      idleTimeout: 0,
      fetch: (req) => ship!.handle(req),
      websocket: {
        maxPayloadLength: 1024 * 1024,
        open: (ws) => {
          if (ws.data.proof) ws.send(JSON.stringify({ type: "proof", proof: ws.data.proof }));
          ws.data.terminal.attach(ws);
        },
        message: (ws, data) => (typeof data === "string" ? ws.data.terminal.control(data) : ws.data.terminal.input(data)),
        close: (ws) => ws.data.terminal.hangup(),
      },
    });
    ship = new FakeShip(o, server);
    o.log(`[ship] session ${o.credentials.session_id}`);
    o.log(`[ship] listening on :${server.port}, workspace /workspace`);
    return ship;
  }

  get port(): number {
    return this.server.port ?? 0;
  }

  /** Dies at once: connections are cut, commands and sleeping cells end. */
  kill(): void {
    this.alive.abort(new Error("the container stopped"));
    void this.server.stop(true);
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    try {
      if (req.method === "GET" && url.pathname === ops.getHealth.path) {
        if (this.o.quirks?.neverHealthy) return new Response("starting", { status: 503 });
        return Response.json({ status: "healthy", kernel: "ready" });
      }
      const header = req.headers.get("authorization") ?? "";
      const token = header.startsWith("Bearer ") ? header.slice(7) : "";
      const ok = this.expected.map((e) => timingSafeEqual(digest(token), e));
      if (!ok.some(Boolean)) return errorResponse(new BayError("unauthorized", "missing or wrong session secret"), this.o.log);
      return this.proved(req, await this.route(req, url).catch((e: unknown) => errorResponse(e, this.o.log)));
    } catch (e) {
      return errorResponse(e, this.o.log);
    }
  }

  /** Ship's proof of the call's nonce on an authenticated answer (src/protocol/ship/auth.ts). */
  private proved(req: Request, res: Response): Response {
    const nonce = req.headers.get(NONCE_HEADER);
    if (!nonce || nonce.length > MAX_NONCE_LENGTH) return res;
    const headers = new Headers(res.headers);
    headers.set(PROOF_HEADER, shipProof(this.secret, nonce));
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }

  private async route(req: Request, url: URL): Promise<Response> {
    const q = Object.fromEntries(url.searchParams);
    const at = `${req.method} ${url.pathname}`;
    const is = (op: { method: string; path: string }) => at === `${op.method.toUpperCase()} ${op.path}`;
    if (is(ops.getMeta)) return Response.json(this.meta());
    if (is(ops.execPython)) {
      const body = checked(ops.execPython.body, await jsonOf(req), "json");
      return this.answerExec(req, () => this.contexts.execIn(undefined, "python")(body.code, body.timeout, req.signal));
    }
    if (is(ops.execCode)) {
      const body = checked(ops.execCode.body, await jsonOf(req), "json");
      const exec = this.contexts.execIn(body.context_id, body.language);
      return this.answerExec(req, () => exec(body.code, body.timeout, req.signal));
    }
    if (is(ops.listContexts)) return Response.json({ items: this.contexts.list() });
    if (is(ops.createContext)) {
      const body = checked(ops.createContext.body, await jsonOf(req), "json");
      return Response.json(await this.contexts.create(body.language, body.cwd), { status: 201 });
    }
    const context = /^\/contexts\/([^/]+)(\/restart)?$/.exec(url.pathname);
    if (context) {
      const id = decodeURIComponent(context[1]!);
      if (context[2] && req.method === "POST") return Response.json(this.contexts.restart(id));
      if (!context[2] && req.method === "GET") return Response.json(this.contexts.get(id));
      if (!context[2] && req.method === "DELETE") {
        this.contexts.delete(id);
        return new Response(null, { status: 204 });
      }
    }
    if (is(ops.execShell)) return Response.json(await this.shell(checked(ops.execShell.body, await jsonOf(req), "json")));
    if (is(ops.listProcesses)) return Response.json({ items: this.processes.list() });
    const proc = /^\/shell\/processes\/([^/]+)$/.exec(url.pathname);
    if (proc && req.method === "GET") return Response.json(this.processes.get(decodeURIComponent(proc[1]!)));
    if (proc && req.method === "DELETE") return Response.json(await this.processes.kill(decodeURIComponent(proc[1]!)));
    const procOp = /^\/shell\/processes\/([^/]+)\/(output|stdin|signal)$/.exec(url.pathname);
    if (procOp) return this.processOperation(req, decodeURIComponent(procOp[1]!), procOp[2]!, q);
    if (is(ops.createTerminal)) {
      const text = await req.text();
      const body = checked(ops.createTerminal.body, text.trim() === "" ? {} : parseJson(text), "json");
      return Response.json({ terminal_id: this.terminals.create(body) }, { status: 201 });
    }
    const term = /^\/terminals\/([^/]+)$/.exec(url.pathname);
    if (term && req.method === "GET") {
      const terminal = this.terminals.unclaimed(decodeURIComponent(term[1]!));
      // Bay's nonce is proved in the first frame, as Ship does (a WebSocket client cannot read the handshake's headers).
      const nonce = req.headers.get(NONCE_HEADER);
      const proof = nonce && nonce.length <= MAX_NONCE_LENGTH ? shipProof(this.secret, nonce) : null;
      if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket" || !this.server.upgrade(req, { data: { terminal, proof } })) {
        throw new BayError("validation_error", "expected a WebSocket upgrade request");
      }
      terminal.claimed = true;
      // Bun has taken the connection over; this response is never sent.
      return new Response(null);
    }
    if (is(ops.watchFiles)) {
      const query = checked(ops.watchFiles.query, q, "query");
      const root = normalize(query.path);
      await checkWatchRoot(this.o.files, this.o.volume, root);
      const stop = AbortSignal.any([req.signal, this.alive.signal]);
      const opts = {
        files: this.o.files,
        volume: this.o.volume,
        root,
        recursive: query.recursive,
        queueMax: WATCH_QUEUE,
        pollMs: WATCH_POLL_MS,
      };
      return eventStream(watchTree(opts, stop), this.o.log);
    }
    if (is(ops.readFile)) {
      const path = normalize(checked(ops.readFile.query, q, "query").path);
      return Response.json({ path, content: new TextDecoder().decode(await this.readBytes(path)) });
    }
    if (is(ops.writeFile)) {
      const body = checked(ops.writeFile.body, await jsonOf(req), "json");
      const bytes = new TextEncoder().encode(body.content);
      const path = normalize(body.path);
      await this.writeBytes(path, bytes);
      return Response.json({ status: "ok", path, size: bytes.byteLength });
    }
    if (is(ops.deletePath)) {
      const path = normalize(checked(ops.deletePath.query, q, "query").path);
      if (path === ".") throw new BayError("invalid_path", "cannot delete the workspace root");
      await this.o.files.remove(this.o.volume, path);
      return Response.json({ status: "ok" });
    }
    if (is(ops.listDirectory)) return Response.json(await this.list(normalize(checked(ops.listDirectory.query, q, "query").path)));
    if (is(ops.uploadFile)) {
      const path = normalize(checked(ops.uploadFile.query, q, "query").path);
      const bytes = await this.receive(req);
      await this.writeBytes(path, bytes);
      return Response.json({ status: "ok", path, size: bytes.byteLength });
    }
    if (is(ops.downloadFile)) {
      const path = normalize(checked(ops.downloadFile.query, q, "query").path);
      const { stat, body } = await this.o.files.read(this.o.volume, path);
      return new Response(body, { headers: { "content-type": "application/octet-stream", "content-length": String(stat.size) } });
    }
    throw new BayError("not_found", `no route: ${req.method} ${url.pathname}`);
  }

  /** A background process's output (JSON, or followed as an event stream), stdin and signals. */
  private async processOperation(req: Request, id: string, what: string, q: Record<string, string>): Promise<Response> {
    if (what === "output" && req.method === "GET") {
      const { offset, encoding } = checked(ops.readProcessOutput.query, q, "query");
      if (!/\btext\/event-stream\b/i.test(req.headers.get("accept") ?? ""))
        return Response.json(this.processes.output(id, offset, encoding));
      this.processes.checkFollow(id, offset);
      return eventStream(this.processes.follow(id, offset, encoding, AbortSignal.any([req.signal, this.alive.signal])), this.o.log);
    }
    if (what === "stdin" && req.method === "POST") {
      const body = checked(ops.writeProcessStdin.body, await jsonOf(req), "json");
      if (body.encoding === "base64" && !/^[A-Za-z0-9+/]*={0,2}$/.test(body.data)) {
        throw new BayError("validation_error", "data is not valid base64", {
          details: { issues: [{ path: "data", message: "not base64" }] },
        });
      }
      const bytes = Buffer.from(body.data, body.encoding === "base64" ? "base64" : "utf8");
      if (bytes.byteLength > STDIN_LIMIT) {
        throw new BayError("payload_too_large", `a stdin write may carry at most ${STDIN_LIMIT} bytes`, {
          details: { limit: STDIN_LIMIT },
        });
      }
      return Response.json(this.processes.writeStdin(id, bytes, body.eof));
    }
    if (what === "signal" && req.method === "POST") {
      return Response.json(this.processes.signal(id, checked(ops.signalProcess.body, await jsonOf(req), "json").signal));
    }
    throw new BayError("not_found", `no route: ${req.method} ${new URL(req.url).pathname}`);
  }

  private meta() {
    const capabilities = Object.fromEntries(
      Object.entries(CAPABILITIES).filter(([name]) => this.o.quirks?.capabilities?.includes(name as "python") ?? true),
    );
    return {
      runtime: { name: "ship", version: "in-memory-fake", api_version: this.o.quirks?.apiVersion ?? SHIP_API_VERSION, build: {} },
      session: { id: this.o.credentials.session_id },
      workspace: { mount_path: "/workspace" },
      capabilities,
      languages: this.o.quirks?.languages ?? [...LANGUAGES],
    };
  }

  /**
   * An exec's answer: JSON, or with `Accept: text/event-stream` the same run as
   * Ship's events, all at its end (the fake produces output only when a cell ends):
   * its output as one `stdout` event, then `result`, or an `error` event.
   */
  private async answerExec(req: Request, run: () => Promise<unknown>): Promise<Response> {
    if (!/\btext\/event-stream\b/i.test(req.headers.get("accept") ?? "")) return Response.json(await run());
    const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    let text = ": stream open\n\n";
    try {
      const result = (await run()) as { output?: string };
      if (result.output) text += event("stdout", { text: result.output });
      text += event("result", result);
    } catch (e) {
      text += event("error", errorBodyOf(e, this.o.log));
    }
    return new Response(text, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  }

  /** A context's working directory: normalised, and an existing directory of the workspace. */
  private async directory(cwd: string): Promise<string> {
    const path = normalize(cwd);
    const where = await this.o.files.stat(this.o.volume, path);
    if (!where) throw fileErrors.notFound(path);
    if (where.kind !== "directory") throw new BayError("validation_error", `cwd is not a directory: ${path}`);
    return path;
  }

  private async shell(body: z.infer<typeof ops.execShell.body>) {
    const cwd = await this.directory(body.cwd ?? ".");
    const env = body.env ?? {};
    if (body.background) {
      const item = this.processes.start(body.command, cwd, env, body.stdin === true);
      return { success: true, output: "", error: "", exit_code: null, truncated: false, process_id: item.process_id };
    }
    const deadline = AbortSignal.timeout(body.timeout * 1000);
    const r = await runShell(this.host, body.command, cwd, env, AbortSignal.any([deadline, this.alive.signal])).catch((e) => {
      if (!deadline.aborted) throw e;
      return null;
    });
    if (!r) {
      throw new BayError("timeout", `command timed out after ${body.timeout}s`, {
        details: { timeout: body.timeout, output: "", error: "", truncated: false },
      });
    }
    return { success: r.exitCode === 0, output: r.stdout, error: r.stderr, exit_code: r.exitCode, truncated: false, process_id: null };
  }

  private async list(path: string) {
    const { entries, truncated } = await this.o.files.list(this.o.volume, path, { maxEntries: LIST_LIMIT, timeoutMs: 60_000 });
    return {
      path,
      entries: entries.map((e) => ({
        name: e.name,
        path: path === "." ? e.name : `${path}/${e.name}`,
        is_file: e.kind === "file",
        is_dir: e.kind === "directory",
        size: e.size,
        modified_time: new Date(e.modifiedAt).toISOString(),
      })),
      truncated,
    };
  }

  private async readBytes(path: string): Promise<Uint8Array> {
    const { body } = await this.o.files.read(this.o.volume, path);
    return new Uint8Array(await new Response(body).arrayBuffer());
  }

  private async writeBytes(path: string, bytes: Uint8Array): Promise<void> {
    if (path === ".") throw new BayError("invalid_path", "cannot write to the workspace root");
    if (this.alive.signal.aborted) throw new BayError("internal_error", "the container stopped");
    await this.o.files.write(this.o.volume, path, { size: bytes.byteLength, bytes });
  }

  /** An upload's bytes, refused past the limit as they arrive. */
  private async receive(req: Request): Promise<Uint8Array> {
    const limit = this.o.maxUploadBytes;
    const tooLarge = () => new BayError("payload_too_large", `upload is larger than ${limit} bytes`, { details: { limit } });
    if (Number(req.headers.get("content-length") ?? "0") > limit) throw tooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = req.body?.getReader();
    for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
      size += r.value.byteLength;
      if (size > limit) {
        await reader!.cancel();
        throw tooLarge();
      }
      chunks.push(r.value);
    }
    return Buffer.concat(chunks);
  }
}

/** The kernel's view of the workspace: the volume's errors as Python exceptions. */
function pythonHost(host: ShellHost): KernelHost {
  const asPython = (path: string) => (e: unknown) => {
    if (!(e instanceof BayError)) throw e;
    if (e.code === "file_not_found") throw new PyError("FileNotFoundError", `[Errno 2] No such file or directory: '${path}'`);
    if (e.code === "validation_error") throw new PyError("IsADirectoryError", `[Errno 21] Is a directory: '${path}'`);
    throw new PyError("OSError", `${e.message}: '${path}'`);
  };
  return {
    readText: (p, shown) => host.readText(p).catch(asPython(shown)),
    writeText: (p, t, shown) => host.writeText(p, t).catch(asPython(shown)),
    sleep: host.sleep,
  };
}

/** Ship's event stream: an opening comment, then one event per item; a failure ends it with an `error` event in Ship's error body. */
function eventStream(events: AsyncGenerator<FollowEvent | WatchEvent>, log: (line: string) => void): Response {
  const enc = new TextEncoder();
  const frame = (event: string, data: unknown) => enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrl.enqueue(enc.encode(": stream open\n\n"));
    },
    async pull(ctrl) {
      try {
        const next = await events.next();
        if (next.done) ctrl.close();
        else ctrl.enqueue(frame(next.value.event, next.value.data));
      } catch (e) {
        const res = errorResponse(e, log);
        ctrl.enqueue(frame("error", await res.json()));
        ctrl.close();
      }
    },
    async cancel() {
      await events.return(undefined);
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BayError("validation_error", "malformed JSON body");
  }
}

async function jsonOf(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    throw new BayError("validation_error", "malformed JSON body");
  }
}

/** Checks a request part with the protocol's schema, failing as Ship's validator does. */
function checked<S extends z.ZodType>(schema: S, value: unknown, target: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  const first = issues[0];
  throw new BayError("validation_error", first ? `invalid ${target}: ${first.path || "(root)"}: ${first.message}` : `invalid ${target}`, {
    details: { issues },
  });
}

/** Ship's error body for `e` (anything not Ship's own becomes internal_error, logged). */
function errorBodyOf(e: unknown, log: (line: string) => void) {
  const err = e instanceof BayError && SHIP_CODES.has(e.code) ? e : null;
  if (!err) log(`[ship] internal error: ${e instanceof Error ? e.message : String(e)}`);
  const code = err?.code ?? "internal_error";
  return { error: { code, message: err?.message ?? "internal error", details: err?.details ?? {} } };
}

function errorResponse(e: unknown, log: (line: string) => void): Response {
  const body = errorBodyOf(e, log);
  return Response.json(body, { status: ERROR_STATUS[body.error.code] });
}
