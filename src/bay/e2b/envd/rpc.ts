/**
 * envd's Connect RPC services (Process, Filesystem) as fetch handlers by request path.
 * Built on the first envd call (index.ts imports this module then), so a Bay whose
 * E2B API only sees the control plane, or nothing, never loads Connect RPC, protobuf
 * or the generated service descriptors.
 */
import { type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { createConnectRouter, createContextValues } from "@connectrpc/connect";
import { universalServerRequestFromFetch, universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import type { SandboxExec } from "../../domain/sandbox-exec.ts";
import type { SandboxFiles } from "../../domain/sandbox-files.ts";
import type { SandboxWatch } from "../../domain/sandbox-watch.ts";
import type { Logger } from "../../logger.ts";
import { Filesystem } from "../generated/envd/filesystem/filesystem_pb.ts";
import { Process } from "../generated/envd/process/process_pb.ts";
import type { DataPlaneCall } from "./access.ts";
import { withClientFaults } from "./client-faults.ts";
import { connectRefusal } from "./connect-refusal.ts";
import { toConnectError } from "./connect-errors.ts";
import { DOOR_CALL, EnvdCalls } from "./envd-calls.ts";
import { FileInfo } from "./file-info.ts";
import { filesystemService } from "./filesystem-service.ts";
import { PollingWatchers } from "./polling-watchers.ts";
import type { ProcessBackend } from "./process-backend.ts";
import { processService } from "./process-service.ts";
import { shapedBody } from "./shaped-body.ts";
import type { PtySessions } from "./pty-sessions.ts";

export interface EnvdRpcDeps {
  logger: Logger;
  backend: ProcessBackend;
  ptys: PtySessions;
  envVars: (call: DataPlaneCall) => Promise<Record<string, string>>;
  exec: SandboxExec;
  files: SandboxFiles;
  watch: SandboxWatch;
  /** Polling watchers an owner may have at once (Bay's open-stream limit per owner). */
  maxWatchersPerOwner: number;
  /** Largest Connect message Bay reads (a SendInput of stdin, a request): Bay's JSON body limit, limits.max_body_bytes. */
  readMaxBytes: number;
}

/** The longest delay a timer holds (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A call's handler, run as `call` (its door authorized it from the request's headers). */
export type EnvdHandler = (req: Request, call: DataPlaneCall) => Promise<Response>;

export interface EnvdRpc {
  /** Request path (`/process.Process/Start`) → handler. */
  handlers: Map<string, EnvdHandler>;
  /** The answer to a call refused before its request was read, as its handler would have failed it. */
  refusal(contentType: string, e: unknown): Response;
  /** `body` of a call to `path`, judged as it streams before Connect decodes it (shaped-body.ts). */
  shapedBody(path: string, contentType: string, body: ReadableStream<Uint8Array> | null): ReadableStream<Uint8Array> | null;
}

/**
 * Whether a request message can carry data (a command's arguments and environment, stdin,
 * a terminal's input): a bytes, list or map field anywhere in it. Such a call's message
 * may be up to readMaxBytes (Start, SendInput, StreamInput); any other call's whole
 * request (a path, a process selector, a signal) is at most SMALL_REQUEST_BYTES:
 * decoding costs follow size on Bay's event loop even for valid text (review s92).
 */
export function carriesData(m: DescMessage, seen = new Set<string>()): boolean {
  if (seen.has(m.typeName)) return false;
  seen.add(m.typeName);
  return m.fields.some(
    (f) =>
      f.fieldKind === "list" ||
      f.fieldKind === "map" ||
      (f.fieldKind === "scalar" && f.scalar === ScalarType.BYTES) ||
      (f.fieldKind === "message" && carriesData(f.message, seen)),
  );
}

/** The most the whole request of a call that carries no data may be (see carriesData). */
const SMALL_REQUEST_BYTES = 64 * 1024;

export function buildEnvdRpc(d: EnvdRpcDeps): EnvdRpc {
  const calls = new EnvdCalls(d.logger);
  const router = createConnectRouter({
    grpc: false,
    grpcWeb: false,
    connect: true,
    readMaxBytes: d.readMaxBytes,
    // A deadline (Connect-Timeout-Ms, the SDK's timeoutMs) past what a timer holds
    // (~24.8 days) would fire at once and kill its command: refused as invalid_argument.
    maxTimeoutMs: MAX_TIMER_MS,
    jsonOptions: { ignoreUnknownFields: true },
    // Bay reads no field it does not know: skipped, not kept (review s90 M2).
    binaryOptions: { readUnknownFields: false },
  });
  router.service(Process, processService({ calls, backend: d.backend, ptys: d.ptys, envVars: d.envVars }));
  router.service(
    Filesystem,
    filesystemService({
      calls,
      info: new FileInfo(d.exec),
      files: d.files,
      watch: d.watch,
      watchers: new PollingWatchers({ watch: d.watch, maxPerOwner: d.maxWatchersPerOwner }),
    }),
  );
  // Each call's request message, whether it takes only one (unary, a server stream), and how large its body may be.
  const inputs = new Map(
    router.handlers.map((h) => [
      h.requestPath,
      {
        message: h.method.input,
        one: h.method.methodKind === "unary" || h.method.methodKind === "server_streaming",
        maxBody: carriesData(h.method.input) ? undefined : SMALL_REQUEST_BYTES,
      },
    ]),
  );
  return {
    handlers: new Map(
      router.handlers.map((h): [string, EnvdHandler] => {
        const handler = withClientFaults(h);
        return [
          h.requestPath,
          async (req, call) => {
            const contextValues = createContextValues().set(DOOR_CALL, call);
            return universalServerResponseToFetch(await handler({ ...universalServerRequestFromFetch(req, {}), contextValues }));
          },
        ];
      }),
    ),
    refusal: (contentType, e) => connectRefusal(contentType, toConnectError(e, d.logger)),
    shapedBody: (path, contentType, body) => {
      const input = inputs.get(path);
      return input ? shapedBody(contentType, body, input.message, d.readMaxBytes, input.maxBody, input.one) : body;
    },
  };
}
