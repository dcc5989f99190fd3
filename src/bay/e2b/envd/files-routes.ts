/**
 * envd's HTTP file routes: `GET /files` streams a file's bytes, `POST /files`
 * writes raw bytes (`application/octet-stream`, gzip allowed) to `path` or
 * multipart `file` parts named by their paths (spooled on Bay's disk and
 * written once the whole form is read: memory holds none of them). Under the prefix they are
 * authorized like every envd call; at the origin root they serve the signed
 * URLs of `uploadUrl` / `downloadUrl`, which name no sandbox: Bay finds the
 * sandbox whose access token made the signature (one HMAC and one SHA-256 per
 * live sandbox), or takes the `E2b-Sandbox-Id` header when a client sends it.
 */
import { Readable } from "node:stream";
import type { Context } from "hono";
import { Hono } from "hono";
import { validate } from "../../api/middleware/validate.ts";
import { receiveFileParts } from "../../api/multipart-parts.ts";
import { refuseDeclaredOver } from "../../api/multipart-upload.ts";
import type { UploadSpool } from "../../api/upload-spool.ts";
import { relay, sentBody } from "../../api/relay.ts";
import type { SandboxFiles, StreamingUpload } from "../../domain/sandbox-files.ts";
import { BayError } from "../../errors.ts";
import type { SandboxStore } from "../../store/sandbox-store.ts";
import type { E2bCredentials } from "../credentials.ts";
import { operations as ops } from "../generated/openapi/index.ts";
import { asSent, normalizeFilePath, shownPath } from "../../domain/paths.ts";
import { namesDirectory } from "../../../protocol/ship/constants.ts";
import { toE2bPath, toWorkspacePath } from "../paths.ts";
import type { E2bSandboxStore } from "../store.ts";
import { type DataPlaneAccess, type DataPlaneCall, liveSandbox, requestedUser } from "./access.ts";

export interface FilesRoutesDeps {
  access: DataPlaneAccess;
  credentials: E2bCredentials;
  files: SandboxFiles;
  sandboxes: SandboxStore;
  e2bStore: E2bSandboxStore;
  /** Where multipart parts wait until the whole form is read. */
  spool: UploadSpool;
  /** Most live sandboxes a signed URL is checked against. */
  maxSignatureScan?: number;
  now?: () => number;
}

/** Most `file` parts one multipart write may carry. */
const MAX_FILE_PARTS = 1000;
/** Why a write's target that names a directory by its form (`dir/`) is refused: the words of the paths rule. */
const NAMES_DIRECTORY_REASON = "names a directory, not a file";

type FileQuery = {
  path?: string | undefined;
  username?: string | undefined;
  signature?: string | undefined;
  signature_expiration?: number | undefined;
};

/** The user a `username` query names, under the data plane's one rule (requestedUser). */
const queryUser = (username: string): string => requestedUser(`Basic ${Buffer.from(`${username}:`).toString("base64")}`);

export function filesRoutes(deps: FilesRoutesDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? Date.now;

  const authorize = async (c: Context, q: FileQuery, operation: "read" | "write"): Promise<DataPlaneCall> => {
    const requestId = c.get("requestId") ?? "";
    if (q.signature === undefined) {
      const call = await deps.access.authorize({
        sandboxId: c.req.header("e2b-sandbox-id"),
        accessToken: c.req.header("x-access-token"),
        authorization: c.req.header("authorization"),
        requestId,
        signal: c.req.raw.signal,
      });
      // The Python SDK names the user in the query, never in Authorization: it is held to the same rule.
      return q.username ? { ...call, user: queryUser(q.username) } : call;
    }
    const signed = {
      path: q.path ?? "",
      operation,
      user: q.username ?? "",
      signature: q.signature,
      expiration: q.signature_expiration ?? null,
    };
    const named = c.req.header("e2b-sandbox-id");
    const candidates = async () => (named ? [named] : deps.e2bStore.liveSandboxIds(deps.maxSignatureScan ?? 10_000));
    const id = await deps.credentials.signerOf(candidates, signed, now());
    if (id === null) throw new BayError("unauthorized", "invalid or expired file URL signature");
    const sb = await liveSandbox(deps.sandboxes, id, now());
    deps.access.charge(sb.owner);
    const user = q.username ? queryUser(q.username) : requestedUser(undefined);
    return { owner: sb.owner, sandboxId: id, requestId, signal: c.req.raw.signal, user };
  };

  app.get("/files", validate("query", ops.e2bReadFile.query), async (c) => {
    const q = c.req.valid("query");
    // The file's body is handed to the server as it is (see sentBody in api/relay.ts).
    const call = { ...(await authorize(c, q, "read")), ...sentBody(c) };
    const res = await deps.files.download(call, toWorkspacePath(q.path ?? ""));
    return relay(c, res);
  });

  app.post("/files", validate("query", ops.e2bWriteFiles.query), async (c) => {
    const q = c.req.valid("query");
    if (q.signature !== undefined && !q.path) {
      throw new BayError("validation_error", "a signed upload URL must name its `path`", { details: { field: "path" } });
    }
    const call = await authorize(c, q, "write");
    const limits = await deps.files.uploadLimits(call.owner, call.sandboxId);
    const type = c.req.header("content-type") ?? "";
    const written: Array<{ name: string; type: "file"; path: string }> = [];
    /** Writes `body` to `path`, the workspace path of `rawPath` as sent (writeTarget). */
    const put = async (
      { rawPath, path }: { rawPath: string; path: string },
      body: ReadableStream<Uint8Array>,
      broken: () => BayError | null = () => null,
    ) => {
      let failure: BayError | null = null;
      const upload: StreamingUpload = {
        path,
        sentPath: rawPath,
        body: limited(body, limits.maxBytes, () => {
          failure = limits.tooLarge();
          return failure;
        }),
        failure: () => failure ?? broken(),
        release: async () => {},
      };
      await (await deps.files.upload(call, limits, upload)).body?.cancel();
      const abs = toE2bPath(path);
      written.push({ name: abs.split("/").pop() ?? abs, type: "file", path: abs });
    };
    if (type.startsWith("multipart/form-data")) {
      // Parts are read from a byte-counted copy of the body into the spool: disk holds them, within the upload limit.
      const raw = c.req.raw.body;
      if (!raw) throw new BayError("validation_error", "empty multipart body");
      // A declared length past the limit is refused before a byte is read, as on /v1.
      refuseDeclaredOver(c.req.raw, limits.maxBytes, limits.tooLarge);
      const received = await receiveFileParts(limited(raw, limits.maxBytes, limits.tooLarge), type, {
        maxFileBytes: limits.maxBytes,
        tooLarge: limits.tooLarge,
        maxFiles: MAX_FILE_PARTS,
        spool: deps.spool.forOwner(call.owner),
      });
      try {
        const { parts } = received;
        if (parts.length === 0) throw new BayError("validation_error", "no `file` part in the multipart body");
        // `path` names the one file written, as in envd: part names never widen it (a signed URL is signed for that path only).
        if (q.path && parts.length > 1) {
          throw new BayError("validation_error", "`path` names one file: send one `file` part, or several without `path`", {
            details: { field: "path" },
          });
        }
        // Every target is checked by the rule its write applies before the first byte is
        // written, then against the disk (an existing directory, a file on the way).
        const targets = parts.map((part) => {
          const rawPath = q.path || part.filename;
          if (!rawPath) throw new BayError("validation_error", "a `file` part names no path and no `path` was given");
          // busboy decodes names as UTF-8, lossily: two different byte names would name one file.
          if (rawPath.includes("\uFFFD")) throw new BayError("validation_error", "a `file` part's name is not valid UTF-8");
          return { rawPath, path: writeTarget(rawPath) };
        });
        // One part's own write is its check; with several, a later one must not fail after the first landed.
        const unwritable =
          targets.length > 1
            ? await deps.files.firstRefusedUpload(
                call,
                targets.map((t) => t.path),
              )
            : null;
        if (unwritable) throw asSent(unwritable.refusal, targets[unwritable.index]!.rawPath);
        for (const [i, part] of parts.entries())
          await put(targets[i]!, Readable.toWeb(part.read()) as unknown as ReadableStream<Uint8Array>);
      } finally {
        await received.release();
      }
    } else {
      if (!q.path) throw new BayError("validation_error", "`path` is required for a raw upload");
      let body: ReadableStream<Uint8Array> = c.req.raw.body ?? new Blob([]).stream();
      const gzip = (c.req.header("content-encoding") ?? "").toLowerCase() === "gzip";
      if (gzip) {
        body = body.pipeThrough(new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
      }
      // A body that breaks off, or is not the gzip it says it is, is the client's 400, not a lost runtime.
      const read = recorded(body, (e) =>
        gzip
          ? new BayError("validation_error", `the body is not valid gzip (Content-Encoding: gzip): ${errorText(e)}`)
          : new BayError("validation_error", `the upload's body broke off: ${errorText(e)}`),
      );
      await put({ rawPath: q.path, path: writeTarget(q.path) }, read.body, read.failure);
    }
    return c.json(written, 200);
  });
  return app;
}

/**
 * The workspace path a write of E2B path `raw` goes to, by the rule of a file to
 * write (normalizeFilePath: not the root, nor a path that names a directory, such
 * as `dir/`); an invalid one names `raw` as sent.
 */
function writeTarget(raw: string): string {
  let path: string;
  try {
    path = normalizeFilePath(toWorkspacePath(raw));
  } catch (e) {
    throw asSent(e, raw);
  }
  // E2B paths lose a trailing `/` on their way to the workspace; a write must not (`dir/` would write a file `dir`).
  if (namesDirectory(raw)) {
    throw new BayError("invalid_path", `invalid path: ${NAMES_DIRECTORY_REASON}`, {
      details: { path: shownPath(raw), reason: NAMES_DIRECTORY_REASON },
    });
  }
  return path;
}

const errorText = (e: unknown): string => (e as Error)?.message ?? String(e);

/** `source` as it is read; a read that fails ends the stream with `failed(error)`, which `failure()` then names. */
function recorded(
  source: ReadableStream<Uint8Array>,
  failed: (e: unknown) => BayError,
): { body: ReadableStream<Uint8Array>; failure(): BayError | null } {
  const reader = source.getReader();
  let failure: BayError | null = null;
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const r = await reader.read();
        if (r.done) ctrl.close();
        else ctrl.enqueue(r.value);
      } catch (e) {
        failure = failed(e);
        ctrl.error(failure);
      }
    },
    cancel(reason) {
      return reader.cancel(reason).catch(() => {});
    },
  });
  return { body, failure: () => failure };
}

/** Passes bytes through until more than `max` have come, then fails the stream with `tooLarge()`. */
function limited(body: ReadableStream<Uint8Array>, max: number, tooLarge: () => BayError): ReadableStream<Uint8Array> {
  let seen = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        seen += chunk.byteLength;
        if (seen > max) {
          ctrl.error(tooLarge());
          return;
        }
        ctrl.enqueue(chunk);
      },
    }),
  );
}
