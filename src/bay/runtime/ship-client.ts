/**
 * Bay's typed client of the Ship protocol (openapi/ship.v1.yaml, types generated
 * into src/protocol/ship): one method per operation, each with its own deadline,
 * every call authenticated with a key derived from the session's secret and every
 * answer checked for Ship's proof (src/protocol/ship/auth.ts). It turns transport
 * failures and Ship error bodies into `BayError`s; it knows nothing of sandboxes.
 *
 * Methods whose answer Bay relays to its client return the Response unread (so
 * bodies stream through), typed by what its JSON holds.
 */
import type {
  CodeExecRequest,
  Context,
  ContextList,
  CreateContextRequest,
  Meta,
  Process,
  ProcessOutput,
  ProcessSignalRequest,
  ProcessStdinRequest,
  ProcessStdinResult,
  PythonExecRequest,
  PythonExecResult,
  ShellExecRequest,
  ShellExecResult,
  ShipOperationId,
  TerminalCreated,
  TerminalRequest,
  WriteResult,
} from "../../protocol/ship/index.ts";
// Not index.ts: Bay only sends requests, and the generated schemas it would load are Ship's to run.
import { NONCE_HEADER, newNonce, PROOF_HEADER, proofValid, shipBearer } from "../../protocol/ship/auth.ts";
import { shipRequestTarget } from "./endpoint.ts";
import { routes as shipRoutes } from "../../protocol/ship/generated/routes.ts";
import { BayError } from "../errors.ts";
import { ShipBadResponseError } from "./errors/ship-bad-response-error.ts";
import { ShipTimeoutError } from "./errors/ship-timeout-error.ts";
import { ShipUnreachableError } from "./errors/ship-unreachable-error.ts";
import { ShipWrongSessionError } from "./errors/ship-wrong-session-error.ts";
import { boundWholeReads, jsonOrNull } from "./bounded-answer.ts";
import { isEventStream, relayEventStream } from "./event-stream.ts";
import { fromShipErrorResponse, headError } from "./ship-errors.ts";
import { type ShipChannels, sendOnChannel } from "./ship-channel.ts";
import { openShipSocket } from "./ship-socket.ts";
import {
  type CallOptions,
  DEADLINES,
  type ExecOptions,
  execDeadlineMs,
  PORT_OPS,
  type Send,
  type ShipReply,
  type ShipTarget,
  SUBPROTOCOLS_HEADER,
  shipPathSegment,
  UPSTREAM_HEADER,
} from "./ship-call.ts";

export * from "./ship-call.ts";

export class ShipClient {
  /** `channels`: send small calls on each Ship's call channel once one is open (ship-channel.ts); without, every call is HTTP. */
  constructor(
    private readonly fetchImpl: typeof fetch = fetch,
    private readonly channels: ShipChannels | null = null,
  ) {}

  /** True when something answers /health with 200 within `timeoutMs` (no secret: liveness only). */
  async isHealthy(endpoint: string, timeoutMs = 1000): Promise<boolean> {
    try {
      const { url, unix } = shipRequestTarget(endpoint, shipRoutes.getHealth.path);
      const res = await this.fetchImpl(url, {
        ...(unix ? { unix } : {}),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "manual",
      } as RequestInit);
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** GET /meta, shape-checked; a Ship of another session answers ShipWrongSessionError. */
  async meta(t: ShipTarget, o: CallOptions = {}): Promise<Meta> {
    const res = await this.send(t, "getMeta", { timeoutMs: DEADLINES.meta }, o);
    const body = await jsonOrNull<Partial<Meta>>(res);
    if (!body?.runtime?.api_version || typeof body.capabilities !== "object" || body.capabilities === null) {
      throw new ShipBadResponseError("sandbox runtime sent an invalid /meta");
    }
    if (body.session?.id !== t.sessionId) throw new ShipWrongSessionError();
    return body as Meta;
  }

  /** Python in the default context; with `o.stream`, the answer may be its event stream (see execStream). */
  execPython(t: ShipTarget, body: PythonExecRequest, o: ExecOptions = {}): Promise<ShipReply<PythonExecResult>> {
    return this.exec(t, "execPython", body, body.timeout, o);
  }

  execShell(t: ShipTarget, body: ShellExecRequest, o: ExecOptions = {}): Promise<ShipReply<ShellExecResult>> {
    return this.exec(t, "execShell", body, body.timeout, o);
  }

  /** Code in a code context (the default one of its language without context_id). */
  execCode(t: ShipTarget, body: CodeExecRequest, o: ExecOptions = {}): Promise<ShipReply<PythonExecResult>> {
    return this.exec(t, "execCode", body, body.timeout, o);
  }

  listContexts(t: ShipTarget, o: CallOptions = {}): Promise<ShipReply<ContextList>> {
    return this.send(t, "listContexts", { timeoutMs: DEADLINES.contexts }, o);
  }

  createContext(t: ShipTarget, body: CreateContextRequest, o: CallOptions = {}): Promise<ShipReply<Context>> {
    return this.send(t, "createContext", { json: body, timeoutMs: DEADLINES.contextStart }, o);
  }

  getContext(t: ShipTarget, contextId: string, o: CallOptions = {}): Promise<ShipReply<Context>> {
    return this.send(t, "getContext", { params: { context_id: contextId }, timeoutMs: DEADLINES.contexts }, o);
  }

  deleteContext(t: ShipTarget, contextId: string, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "deleteContext", { params: { context_id: contextId }, timeoutMs: DEADLINES.contexts }, o);
  }

  restartContext(t: ShipTarget, contextId: string, o: CallOptions = {}): Promise<ShipReply<Context>> {
    return this.send(t, "restartContext", { params: { context_id: contextId }, timeoutMs: DEADLINES.contextStart }, o);
  }

  listProcesses(t: ShipTarget, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "listProcesses", { timeoutMs: DEADLINES.processes }, o);
  }

  getProcess(t: ShipTarget, processId: string, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "getProcess", { params: { process_id: processId }, timeoutMs: DEADLINES.processes }, o);
  }

  killProcess(t: ShipTarget, processId: string, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "killProcess", { params: { process_id: processId }, timeoutMs: DEADLINES.processes }, o);
  }

  readFile(t: ShipTarget, path: string, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "readFile", { query: { path }, timeoutMs: DEADLINES.files }, o);
  }

  writeFile(t: ShipTarget, path: string, content: string, o: CallOptions = {}): Promise<ShipReply<WriteResult>> {
    return this.send(t, "writeFile", { json: { path, content }, timeoutMs: DEADLINES.files }, o);
  }

  deletePath(t: ShipTarget, path: string, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "deletePath", { query: { path }, timeoutMs: DEADLINES.files }, o);
  }

  listDirectory(t: ShipTarget, path: string, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "listDirectory", { query: { path }, timeoutMs: DEADLINES.files }, o);
  }

  /** Uploads `body` to `path`; `length`, when known, is sent as the body's Content-Length. */
  uploadFile(t: ShipTarget, path: string, body: ReadableStream<Uint8Array>, o: CallOptions = {}, length?: number) {
    const send = { query: { path }, raw: body, timeoutMs: DEADLINES.files };
    return this.send<WriteResult>(t, "uploadFile", length === undefined ? send : { ...send, rawLength: length }, o);
  }

  /** Checks upload targets against the disk, writing nothing: the first refused is answered with its upload's error and `details.index`. */
  checkUploads(t: ShipTarget, paths: string[], o: CallOptions = {}): Promise<Response> {
    return this.send(t, "checkUploads", { json: { paths }, timeoutMs: DEADLINES.uploadCheck }, o);
  }

  downloadFile(t: ShipTarget, path: string, o: CallOptions = {}): Promise<Response> {
    return this.send(t, "downloadFile", { query: { path }, timeoutMs: DEADLINES.files }, o);
  }

  /**
   * An exec. Streamed (`o.stream`): asks for the event stream, and an event-stream answer
   * is relayed event by event with Bay's error model (relayEventStream), its body bounded
   * by the same deadline. A background shell start answers JSON even then.
   */
  private exec<T>(t: ShipTarget, op: ShipOperationId, body: unknown, timeoutSeconds: number, o: ExecOptions): Promise<ShipReply<T>> {
    const timeoutMs = execDeadlineMs(timeoutSeconds);
    // Not async: the plain exec is the hot path, and its promise is send's own.
    return o.stream ? this.execStream(t, op, body, timeoutMs, o) : this.send(t, op, { json: body, timeoutMs }, o);
  }

  private async execStream<T>(t: ShipTarget, op: ShipOperationId, body: unknown, timeoutMs: number, o: ExecOptions): Promise<ShipReply<T>> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const res = await this.send<T>(t, op, { json: body, timeoutMs, deadline, accept: "text/event-stream" }, o);
    if (!isEventStream(res)) return res;
    return relayEventStream(res, {
      requestId: o.requestId ?? "",
      deadline,
      timeoutMs,
      client: o.signal,
      onFailure: (e) => this.streamFailed(e),
    }) as ShipReply<T>;
  }

  /** A streamed answer Bay had to end itself (connection lost, deadline, garbage); subclasses count it. */
  protected streamFailed(_e: BayError): void {}

  /** A background process's output from `offset`: a JSON page, or (follow) an event stream that lasts until the process ends. */
  readProcessOutput(
    t: ShipTarget,
    processId: string,
    q: { offset: number; encoding: "text" | "base64"; follow: boolean },
    o: CallOptions = {},
  ): Promise<ShipReply<ProcessOutput>> {
    return this.send(
      t,
      "readProcessOutput",
      {
        params: { process_id: processId },
        query: { offset: String(q.offset), encoding: q.encoding },
        timeoutMs: q.follow ? DEADLINES.stream : DEADLINES.processes,
        ...(q.follow ? { accept: "text/event-stream", streams: true } : {}),
      },
      o,
    );
  }

  /** Writes to a background process's stdin; the deadline is the write's own timeout plus transport. */
  writeProcessStdin(
    t: ShipTarget,
    processId: string,
    body: ProcessStdinRequest,
    o: CallOptions = {},
  ): Promise<ShipReply<ProcessStdinResult>> {
    return this.send(t, "writeProcessStdin", { params: { process_id: processId }, json: body, timeoutMs: execDeadlineMs(body.timeout) }, o);
  }

  signalProcess(t: ShipTarget, processId: string, body: ProcessSignalRequest, o: CallOptions = {}): Promise<ShipReply<Process>> {
    return this.send(t, "signalProcess", { params: { process_id: processId }, json: body, timeoutMs: DEADLINES.processes }, o);
  }

  /** Starts a login shell on a PTY in the Ship; attach to it with `attachTerminal`. */
  async createTerminal(t: ShipTarget, start: TerminalRequest, o: CallOptions = {}): Promise<TerminalCreated> {
    const res = await this.send<TerminalCreated>(t, "createTerminal", { json: start, timeoutMs: DEADLINES.processes }, o);
    const body = await jsonOrNull<Partial<TerminalCreated>>(res);
    if (typeof body?.terminal_id !== "string") throw new ShipBadResponseError("sandbox runtime sent an invalid terminal");
    return { terminal_id: body.terminal_id };
  }

  /**
   * Opens the terminal's WebSocket, resolving once it is open and the Ship proved
   * it is this session's: its first frame must be `{"type":"proof","proof":…}` for
   * the nonce sent with the upgrade (a WebSocket client cannot read the handshake's
   * headers). No proof is ShipWrongSessionError; a Ship that cannot be reached, or
   * refuses, within the deadline is a ShipUnreachableError or ShipTimeoutError.
   */
  async attachTerminal(t: ShipTarget, terminalId: string, o: CallOptions = {}): Promise<WebSocket> {
    const path = shipRoutes.attachTerminal.path.replace("{terminal_id}", shipPathSegment("terminal_id", terminalId));
    return (await openShipSocket(t, path, o, { deadlineMs: DEADLINES.stream })).ws;
  }

  /**
   * Opens a WebSocket to the server on `port` in the sandbox (`rest`: the path and
   * query for it): resolves once Ship proved itself and the server accepted, with
   * the subprotocol it chose; Ship's refusal (port closed, handshake refused) is a BayError.
   */
  portSocket(t: ShipTarget, req: { port: number; rest: string; headers: Headers; protocols: string[] }, o: CallOptions = {}) {
    const path = `${shipRoutes.portGet.path.replace("{port}", String(req.port)).replace("/{path}", "")}${req.rest}`;
    const headers: Record<string, string> = {};
    req.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (req.protocols.length > 0) headers[SUBPROTOCOLS_HEADER] = req.protocols.join(", ");
    return openShipSocket(t, path, o, { deadlineMs: DEADLINES.portSocket, headers, awaitOpen: true });
  }

  /**
   * A request for the server on `port` in the sandbox: `rest` is the path after the
   * port and the query, as the client sent them; `body` streams. The answer is the
   * server's (any status, marked by Ship) or a BayError for Ship's own refusal.
   */
  port(t: ShipTarget, req: { port: number; method: string; rest: string; headers: Headers; body: BodyInit | null }, o: CallOptions = {}) {
    const op = PORT_OPS[req.method] ?? "portGet";
    return this.send(
      t,
      op,
      {
        params: { port: String(req.port) },
        forward: { method: req.method, rest: req.rest, headers: req.headers },
        ...(req.body !== null ? { raw: req.body } : {}),
        timeoutMs: DEADLINES.port,
      },
      o,
    );
  }

  /** Watches a directory: an event stream that lasts until the client or the Ship ends it. */
  watchFiles(t: ShipTarget, path: string, recursive: boolean, o: CallOptions = {}): Promise<Response> {
    return this.send(
      t,
      "watchFiles",
      { query: { path, recursive: String(recursive) }, accept: "text/event-stream", streams: true, timeoutMs: DEADLINES.stream },
      o,
    );
  }

  /** Sends one operation and returns its successful response unread; Ship error bodies become `BayError`s. */
  protected async send<T>(t: ShipTarget, op: ShipOperationId, s: Send, o: CallOptions): Promise<ShipReply<T>> {
    const spec = shipRoutes[op];
    let path: string = spec.path;
    for (const [name, value] of Object.entries(s.params ?? {})) path = path.replace(`{${name}}`, shipPathSegment(name, value));
    // A function, so that `$` patterns in the client's path stay literal.
    if (s.forward) path = path.replace("/{path}", () => s.forward!.rest);
    if (s.query) path += `?${new URLSearchParams(s.query)}`;
    if (this.channels) {
      const res = await sendOnChannel(this.channels, t, op, spec.method.toUpperCase(), path, s, o);
      if (res) {
        if (res.ok) return res as ShipReply<T>;
        // The channel proved its Ship: a refusal of the key on it is that Ship misbehaving, not another session.
        if (res.status === 401)
          throw new ShipBadResponseError("sandbox runtime refused its own channel's credentials", { ship_status: 401 });
        throw await fromShipErrorResponse(res);
      }
    }
    const nonce = newNonce();
    const headers: Record<string, string> = {};
    s.forward?.headers.forEach((value, name) => {
      headers[name] = value;
    });
    headers.authorization = `Bearer ${shipBearer(t.secret)}`;
    headers[NONCE_HEADER] = nonce;
    if (o.requestId) headers["x-request-id"] = o.requestId;
    if (s.accept) headers.accept = s.accept;
    let body: BodyInit | null = null;
    if (s.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(s.json);
    } else if (s.raw !== undefined) {
      // A forwarded body keeps the client's own type.
      if (!s.forward) headers["content-type"] = "application/octet-stream";
      if (s.rawLength !== undefined) headers["content-length"] = String(s.rawLength);
      body = s.raw;
    }
    // The call's deadline: the caller's, or timeoutMs from now. A followed stream's
    // (`streams`) is cleared once its headers arrive; any other call's covers its body too.
    const deadlineCtl = s.deadline ? null : new AbortController();
    const deadline = s.deadline ?? deadlineCtl!.signal;
    const timer = deadlineCtl ? setTimeout(() => deadlineCtl.abort(), s.timeoutMs) : undefined;
    timer?.unref?.();
    const signal = o.signal ? AbortSignal.any([deadline, o.signal]) : deadline;
    let res: Response;
    try {
      const { url, unix } = shipRequestTarget(t.endpoint, path);
      res = await this.fetchImpl(url, {
        ...(unix ? { unix } : {}),
        method: s.forward?.method ?? spec.method.toUpperCase(),
        headers,
        body,
        signal,
        // Request bodies may be streams: send them as they arrive.
        duplex: "half",
        // Bytes as Ship sent them: a compressed answer is never inflated past the bound on whole reads (bounded-answer.ts).
        decompress: false,
        // Never followed: Ship sends no redirect of its own, and a server's in the sandbox is relayed, not fetched by Bay.
        redirect: "manual",
      } as RequestInit);
    } catch (e) {
      clearTimeout(timer);
      if (deadline.aborted) throw new ShipTimeoutError(s.timeoutMs);
      if (o.signal?.aborted)
        throw new BayError("timeout", "the client went away; the call was abandoned", { details: { reason: "client_gone" } });
      throw new ShipUnreachableError(e);
    }
    if (!proofValid(t.secret, nonce, res.headers.get(PROOF_HEADER))) {
      // Not the session's Ship (or not a Ship at all): its answer is never relayed.
      await res.body?.cancel().catch(() => {});
      throw new ShipWrongSessionError(res.status);
    }
    if (s.forward && res.headers.has(UPSTREAM_HEADER)) {
      // The server's own answer: any status is its, and its body lasts as long as it lasts.
      clearTimeout(timer);
      return res as ShipReply<T>;
    }
    // A followed stream's body lasts as long as it lasts; an error or a JSON answer is read under the deadline.
    if (s.streams && res.ok && isEventStream(res)) clearTimeout(timer);
    if (res.ok) return boundWholeReads(res) as ShipReply<T>;
    // A HEAD answer carries no body: Ship's own error is known by its status alone (and its client gets no body either).
    if (s.forward?.method === "HEAD") throw headError(res.status);
    throw await fromShipErrorResponse(boundWholeReads(res));
  }
}
