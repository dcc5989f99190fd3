/**
 * The in-memory fake Ship: what a memory-driver container runs. An HTTP server on
 * 127.0.0.1 (an ephemeral port) speaking the Ship protocol of src/protocol/ship
 * with the session credentials its container was started with: /health is open,
 * every other route wants `Authorization: Bearer <bearer key or secret>` (401 otherwise; answers prove the nonce), and
 * /meta names the session. Requests are checked with the protocol's own schemas.
 *
 * The wire format is fake-ship-wire.ts. Behind the routes (fake-runtime.ts): a tiny Python (fake-python.ts), a tiny shell (fake-shell.ts)
 * and the file routes, all on the container's workspace volume in the engine's
 * MemoryVolumeFiles, the same store the workspace data plane reads, so data
 * written through a sandbox outlives its container. Where the fake is stricter
 * than Ship, it says so: symlinks are refused as the data plane refuses them, and
 * paths outside /workspace do not exist.
 */
import { fakePortAnswer, refusedByServer } from "./fake-ports.ts";
import { createHash, timingSafeEqual } from "node:crypto";
import type { ServerWebSocket } from "bun";
import {
  MAX_NONCE_LENGTH,
  NONCE_HEADER,
  PROOF_HEADER,
  SHIP_API_VERSION,
  type ShipCredentials,
  shipBearer,
  shipOperations as ops,
  proofFor,
  shipProof,
} from "../../../protocol/ship/index.ts";
import { z } from "zod";
import { BayError } from "../../errors.ts";
import { LANGUAGES, type Language } from "./fake-contexts.ts";
import { FakeRuntime, type FakeRuntimeOptions, normalize } from "./fake-runtime.ts";
import { answerExec, checked, errorResponse, eventStream, jsonOf, parseJson, receiveUpload } from "./fake-ship-wire.ts";
import type { TerminalSocketData } from "./fake-terminal.ts";
import { ChannelServer } from "../../../protocol/ship/channel-serve.ts";
import { notText, utf8Text } from "../../../protocol/text-file.ts";
import {
  CAPABILITIES,
  DOT_SEGMENT_REASON,
  endsInDotSegment,
  NOT_A_DIRECTORY_REASON,
  namesDirectory,
  WORKSPACE_ROOT_REASON,
} from "../../../protocol/ship/constants.ts";
import { fileErrors } from "../volume-walk.ts";

/** Bay's call channel (src/protocol/ship/channel.ts): served by this fake's own request handler. */
interface ChannelSocketData {
  authorization: string;
  proof: string | null;
  channel?: ChannelServer;
}

type SocketData = TerminalSocketData | ChannelSocketData;
const isChannel = (d: SocketData): d is ChannelSocketData => "authorization" in d;

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
  /** The longest exec timeout the Ship's schema takes (a Ship built before a day was allowed: 300). */
  maxExecTimeout?: number;
}

export interface FakeShipOptions extends FakeRuntimeOptions {
  credentials: ShipCredentials;
  quirks?: FakeShipQuirks;
  /** Largest upload accepted (Ship's SHIP_MAX_UPLOAD_BYTES). */
  maxUploadBytes: number;
  /** Appends a line to the container's log. */
  log(line: string): void;
}

/** Decoded bytes of one stdin write (Ship's SHIP_MAX_STDIN_BYTES default). */
const STDIN_LIMIT = 1024 * 1024;
const digest = (s: string) => createHash("sha256").update(s).digest();

/** A running fake Ship. */
export class FakeShip {
  private readonly runtime: FakeRuntime;
  private readonly expected: Buffer[];
  private readonly secret: string;

  private constructor(
    private readonly o: FakeShipOptions,
    private readonly server: ReturnType<typeof Bun.serve<SocketData>>,
  ) {
    this.secret = o.credentials.secret;
    this.expected = [digest(shipBearer(this.secret)), digest(this.secret)];
    this.runtime = new FakeRuntime(o);
  }

  /** An exec body as an older Ship's schema checks it (quirks.maxExecTimeout), refused in Ship's words. */
  private olderSchema<B extends { timeout: number }>(body: B): B {
    const max = this.o.quirks?.maxExecTimeout;
    if (max !== undefined) checked(z.object({ timeout: z.number().max(max) }), body, "json");
    return body;
  }

  /** Starts serving on 127.0.0.1:`port` (0: any free port). */
  static start(o: FakeShipOptions, port = 0): FakeShip {
    let ship: FakeShip | null = null;
    const server = Bun.serve<SocketData>({
      hostname: "127.0.0.1",
      port,
      idleTimeout: 0,
      fetch: (req) => ship!.handle(req),
      websocket: {
        maxPayloadLength: 1024 * 1024,
        open: (ws) => {
          const d = ws.data;
          if (isChannel(d))
            d.channel = new ChannelServer(
              { send: (f) => void ws.send(f), close: (c, r) => ws.close(c, r) },
              (req) => ship!.handle(req),
              d.authorization,
            );
          if (d.proof) ws.send(JSON.stringify({ type: "proof", proof: d.proof }));
          if (!isChannel(d)) d.terminal.attach(ws as ServerWebSocket<TerminalSocketData>);
        },
        message: (ws, data) => {
          const d = ws.data;
          if (isChannel(d)) d.channel?.message(data);
          else if (typeof data === "string") d.terminal.control(data);
          else d.terminal.input(data);
        },
        close: (ws) => {
          const d = ws.data;
          if (isChannel(d)) d.channel?.close();
          else d.terminal.hangup();
        },
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
    this.runtime.kill();
    void this.server.stop(true);
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (refusedByServer(url)) return new Response(null, { status: 431 });
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
    if (is(ops.openChannel)) return this.openChannel(req);
    const port = await fakePortAnswer(req, url, this.port);
    if (port) return port;
    if (is(ops.execPython)) {
      const body = this.olderSchema(checked(ops.execPython.body, await jsonOf(req), "json"));
      return answerExec(req, () => this.runtime.contexts.execIn(undefined, "python")(body.code, body.timeout, req.signal), this.o.log);
    }
    if (is(ops.execCode)) {
      const body = this.olderSchema(checked(ops.execCode.body, await jsonOf(req), "json"));
      const exec = this.runtime.contexts.execIn(body.context_id, body.language);
      return answerExec(req, () => exec(body.code, body.timeout, req.signal), this.o.log);
    }
    if (is(ops.listContexts)) return Response.json({ items: this.runtime.contexts.list() });
    if (is(ops.createContext)) {
      const body = checked(ops.createContext.body, await jsonOf(req), "json");
      return Response.json(await this.runtime.contexts.create(body.language, body.cwd), { status: 201 });
    }
    const context = /^\/contexts\/([^/]+)(\/restart)?$/.exec(url.pathname);
    if (context) {
      const id = decodeURIComponent(context[1]!);
      if (context[2] && req.method === "POST") return Response.json(this.runtime.contexts.restart(id));
      if (!context[2] && req.method === "GET") return Response.json(this.runtime.contexts.get(id));
      if (!context[2] && req.method === "DELETE") {
        this.runtime.contexts.delete(id);
        return new Response(null, { status: 204 });
      }
    }
    if (is(ops.execShell)) return Response.json(await this.runtime.shell(checked(ops.execShell.body, await jsonOf(req), "json")));
    if (is(ops.listProcesses)) return Response.json({ items: this.runtime.processes.list() });
    const proc = /^\/shell\/processes\/([^/]+)$/.exec(url.pathname);
    if (proc && req.method === "GET") return Response.json(this.runtime.processes.get(decodeURIComponent(proc[1]!)));
    if (proc && req.method === "DELETE") return Response.json(await this.runtime.processes.kill(decodeURIComponent(proc[1]!)));
    const procOp = /^\/shell\/processes\/([^/]+)\/(output|stdin|signal)$/.exec(url.pathname);
    if (procOp) return this.processOperation(req, decodeURIComponent(procOp[1]!), procOp[2]!, q);
    if (is(ops.createTerminal)) {
      const text = await req.text();
      const body = checked(ops.createTerminal.body, text.trim() === "" ? {} : parseJson(text), "json");
      return Response.json({ terminal_id: this.runtime.terminals.create(body) }, { status: 201 });
    }
    const term = /^\/terminals\/([^/]+)$/.exec(url.pathname);
    if (term && req.method === "GET") {
      const terminal = this.runtime.terminals.unclaimed(decodeURIComponent(term[1]!));
      // Bay's nonce is proved in the first frame, as Ship does (a WebSocket client cannot read the handshake's headers).
      const nonce = req.headers.get(NONCE_HEADER);
      const proof = proofFor(this.secret, nonce);
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
      return eventStream(await this.runtime.watch(root, query.recursive, req.signal), this.o.log);
    }
    if (is(ops.readFile)) {
      const path = normalize(checked(ops.readFile.query, q, "query").path);
      const content = utf8Text(await this.runtime.readBytes(path));
      if (content === null) {
        const download = `filesystem/download?path=${encodeURIComponent(path)}`;
        const { message, details } = notText(path, download);
        throw new BayError("validation_error", message, { details });
      }
      return Response.json({ path, content });
    }
    if (is(ops.writeFile)) {
      const body = checked(ops.writeFile.body, await jsonOf(req), "json");
      const bytes = new TextEncoder().encode(body.content);
      const path = normalize(body.path);
      await this.runtime.writeBytes(path, bytes);
      return Response.json({ status: "ok", path, size: bytes.byteLength });
    }
    if (is(ops.deletePath)) {
      const raw = checked(ops.deletePath.query, q, "query").path;
      const path = normalize(raw);
      if (path === ".")
        throw new BayError("invalid_path", "cannot delete the workspace root", { details: { path: ".", reason: WORKSPACE_ROOT_REASON } });
      // As Ship: one ending in `.` or `..` is refused; one ending in `/` must name a directory.
      if (endsInDotSegment(raw))
        throw new BayError("invalid_path", `invalid path: ${raw} ${DOT_SEGMENT_REASON}`, {
          details: { path: raw, reason: DOT_SEGMENT_REASON },
        });
      // As Ship, a file where `raw` ends in `/` is refused naming `raw`, as Ship was sent it.
      await this.runtime.remove(path, { directory: namesDirectory(raw) }).catch((e: unknown) => {
        throw e instanceof BayError && e.details.reason === NOT_A_DIRECTORY_REASON ? fileErrors.notADirectory(raw) : e;
      });
      return Response.json({ status: "ok" });
    }
    if (is(ops.listDirectory)) return Response.json(await this.runtime.list(normalize(checked(ops.listDirectory.query, q, "query").path)));
    if (is(ops.uploadFile)) {
      const path = normalize(checked(ops.uploadFile.query, q, "query").path);
      const bytes = await receiveUpload(req, this.o.maxUploadBytes);
      await this.runtime.writeBytes(path, bytes);
      return Response.json({ status: "ok", path, size: bytes.byteLength });
    }
    if (is(ops.checkUploads)) {
      const { paths } = checked(ops.checkUploads.body, await jsonOf(req), "json");
      for (const [index, raw] of paths.entries()) {
        try {
          await this.runtime.checkWrite(normalize(raw));
        } catch (e) {
          throw e instanceof BayError ? e.withDetails({ ...e.details, index }) : e;
        }
      }
      return Response.json({ status: "ok" });
    }
    if (is(ops.downloadFile)) {
      const path = normalize(checked(ops.downloadFile.query, q, "query").path);
      const { stat, body } = await this.runtime.download(path);
      return new Response(body, { headers: { "content-type": "application/octet-stream", "content-length": String(stat.size) } });
    }
    throw new BayError("not_found", `no route: ${req.method} ${url.pathname}`);
  }

  /** Bay's call channel: the upgrade's proof first, then each call served by `handle`, as Ship serves it. */
  private openChannel(req: Request): Response {
    const nonce = req.headers.get(NONCE_HEADER);
    const proof = proofFor(this.secret, nonce);
    const data: ChannelSocketData = { authorization: req.headers.get("authorization") ?? "", proof };
    if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket" || !this.server.upgrade(req, { data })) {
      throw new BayError("validation_error", "expected a WebSocket upgrade request");
    }
    // Bun has taken the connection over; this response is never sent.
    return new Response(null);
  }

  /** A background process's output (JSON, or followed as an event stream), stdin and signals. */
  private async processOperation(req: Request, id: string, what: string, q: Record<string, string>): Promise<Response> {
    if (what === "output" && req.method === "GET") {
      const { offset, encoding } = checked(ops.readProcessOutput.query, q, "query");
      if (!/\btext\/event-stream\b/i.test(req.headers.get("accept") ?? ""))
        return Response.json(this.runtime.processes.output(id, offset, encoding));
      this.runtime.processes.checkFollow(id, offset);
      return eventStream(
        this.runtime.processes.follow(id, offset, encoding, AbortSignal.any([req.signal, this.runtime.stopped])),
        this.o.log,
      );
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
      return Response.json(this.runtime.processes.writeStdin(id, bytes, body.eof));
    }
    if (what === "signal" && req.method === "POST") {
      return Response.json(this.runtime.processes.signal(id, checked(ops.signalProcess.body, await jsonOf(req), "json").signal));
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
}
