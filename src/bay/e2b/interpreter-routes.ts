/**
 * The code interpreter of @e2b/code-interpreter: `POST /execute` answers one
 * JSON object per line (stdout, stderr, result with MIME fields, error with
 * name/value/traceback, number_of_executions, end_of_execution). Python in the
 * sandbox's default kernel runs through Bay's python exec; contexts need Bay's
 * code contexts.
 */
import { type Context, Hono } from "hono";
import { validate } from "../api/middleware/validate.ts";
import type { SandboxExec } from "../domain/sandbox-exec.ts";
import { BayError } from "../errors.ts";
import type { DataPlaneAccess, DataPlaneCall } from "./envd/access.ts";
import { operations as ops } from "./generated/openapi/index.ts";

/** Bay's python exec answer (Ship's PythonExecResult). */
interface PythonResult {
  success: boolean;
  output: string;
  error: string | null;
  data: Array<{ type: "execute_result" | "display_data"; data: Record<string, string> }>;
  execution_count: number | null;
}

export interface InterpreterRoutesDeps {
  access: DataPlaneAccess;
  exec: SandboxExec;
}

/** MIME types and the Result fields E2B's SDK reads them into. */
const MIME_FIELDS: Record<string, string> = {
  "text/plain": "text",
  "text/html": "html",
  "text/markdown": "markdown",
  "image/svg+xml": "svg",
  "image/png": "png",
  "image/jpeg": "jpeg",
  "application/pdf": "pdf",
  "text/latex": "latex",
  "application/json": "json",
  "application/javascript": "javascript",
};

export function interpreterRoutes({ access, exec }: InterpreterRoutesDeps): Hono {
  const app = new Hono();
  const authorize = (c: Context): Promise<DataPlaneCall> =>
    access.authorize(
      {
        sandboxId: c.req.header("e2b-sandbox-id"),
        accessToken: c.req.header("x-access-token"),
        trafficToken: c.req.header("e2b-traffic-access-token"),
        authorization: undefined,
        requestId: c.get("requestId") ?? "",
        signal: c.req.raw.signal,
      },
      ["envd", "traffic"],
    );

  app.post("/execute", validate("json", ops.e2bExecute.body), async (c) => {
    const call = await authorize(c);
    const body = c.req.valid("json");
    const language = (body.language ?? "python").toLowerCase();
    if (body.context_id) throw contextsUnavailable();
    if (language !== "python")
      throw new BayError("validation_error", `language ${language}: only python until code contexts are available`);
    const res = await exec.python(call, { code: body.code, timeout: 300 });
    const result = (await res.json()) as PythonResult;
    const lines = executionLines(result);
    c.header("Content-Type", "application/x-ndjson");
    return c.body(`${lines.map((l) => JSON.stringify(l)).join("\n")}\n`, 200);
  });

  app.get("/contexts", async (c) => {
    await authorize(c);
    throw contextsUnavailable();
  });
  app.post("/contexts", async (c) => {
    await authorize(c);
    throw contextsUnavailable();
  });
  app.delete("/contexts/:contextID", async (c) => {
    await authorize(c);
    throw contextsUnavailable();
  });
  app.post("/contexts/:contextID/restart", async (c) => {
    await authorize(c);
    throw contextsUnavailable();
  });
  return app;
}

const contextsUnavailable = () => new BayError("not_implemented", "code contexts are not available on this Bay yet");

/** The NDJSON messages of one finished Python exec, in the order the SDK expects them. */
export function executionLines(r: PythonResult): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  // Bay's output ends with the last expression's text/plain, which E2B sends as the result instead.
  const main = r.data.find((d) => d.type === "execute_result");
  let stdout = r.output;
  const plain = main?.data["text/plain"];
  if (plain !== undefined) {
    if (stdout.endsWith(`${plain}\n`)) stdout = stdout.slice(0, -(plain.length + 1));
    else if (stdout.endsWith(plain)) stdout = stdout.slice(0, -plain.length);
  }
  if (stdout) lines.push({ type: "stdout", text: stdout });
  for (const d of r.data) lines.push(resultLine(d.data, d.type === "execute_result"));
  if (!r.success && r.error) lines.push(errorLine(r.error));
  if (r.execution_count !== null) lines.push({ type: "number_of_executions", execution_count: r.execution_count });
  lines.push({ type: "end_of_execution" });
  return lines;
}

export function resultLine(data: Record<string, string>, isMain: boolean): Record<string, unknown> {
  const line: Record<string, unknown> = { type: "result", is_main_result: isMain };
  const extra: Record<string, string> = {};
  for (const [mime, value] of Object.entries(data)) {
    const field = MIME_FIELDS[mime];
    if (field) line[field] = value;
    else extra[mime] = value;
  }
  if (Object.keys(extra).length > 0) line.extra = extra;
  return line;
}

/** name and value from a traceback's last line ("ZeroDivisionError: division by zero"). */
export function errorLine(traceback: string): Record<string, unknown> {
  const last =
    traceback
      .trimEnd()
      .split("\n")
      .filter((l) => l.trim() !== "")
      .pop() ?? "";
  const m = /^([A-Za-z_][\w.]*)(?::\s?(.*))?$/.exec(last.trim());
  return { type: "error", name: m?.[1] ?? "Error", value: m ? (m[2] ?? "") : last, traceback };
}
