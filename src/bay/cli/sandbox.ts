/**
 * `bay sandbox create|ls|exec|shell|stats|cp|forward|rm` against a Bay URL (BAY_URL, BAY_TOKEN, or
 * --url / --token / --owner). Output is made for scripts: `create` prints the
 * id alone, `exec` passes the program's stdout and stderr through and exits
 * with its exit code.
 */
import type { PythonExecResult, Sandbox, SandboxList, SandboxMetrics, ShellExecResult } from "../api/generated/index.ts";
import { MAX_EXEC_TIMEOUT_SECONDS } from "../api/exec-limits.ts";
import { errorMessage } from "../logger.ts";
import { allowOnly, type CliIo, flag, type Parsed, parseArgs, table, UsageError } from "./args.ts";
import { ClientError, type ClientTarget, clientTarget, printable, request } from "./client.ts";
import { copy, copyEnds } from "./copy.ts";
import { streamExec } from "./exec-stream.ts";
import { type Listen, parseListen, startForwarder } from "./forward.ts";
import { onEndingSignals } from "./signals.ts";
import { attachTerminal } from "./terminal-attach.ts";
import { processTerminal } from "./terminal-local.ts";

export const SANDBOX_USAGE = `usage: bay sandbox <command> [--url URL] [--token TOKEN] [--owner NAME]

commands:
  sandbox create [--profile ID] [--ttl SECONDS] [--json]   create a sandbox; prints its id
  sandbox ls [--status STATUS] [--json]                     list your sandboxes
  sandbox exec ID [--cwd DIR] [--timeout S] -- COMMAND…     run a shell command; exits with its code
  sandbox exec ID --python CODE|- [--timeout S]             run Python (- reads the code from stdin)
  sandbox shell ID                                          a login shell on the sandbox's terminal; exits with its status
  sandbox stats ID… [--json]                                CPU, memory and disk use now (never starts a sandbox)
  sandbox cp SRC DST                                        copy one file in or out; ID:PATH is in the sandbox's /workspace
  sandbox forward ID PORT [--listen [HOST:]LOCAL]           serve the sandbox's server on PORT at http://ID.localhost:LOCAL/
                                                            (LOCAL defaults to PORT; WebSockets too; Ctrl-C to stop)
  sandbox rm ID…                                            delete sandboxes

COMMAND's words are joined with spaces into one line for the sandbox's shell, as ssh
does: quote what that shell must see as one word (-- sh -c "'echo a; echo b'").

URL defaults to BAY_URL or http://127.0.0.1:8000, the token to BAY_TOKEN (an API key
or JWT); --owner (or BAY_OWNER) sets X-Owner for a Bay in anonymous mode.`;

const CONNECTION = ["url", "token", "owner"] as const;
const SPEC = { values: [...CONNECTION, "profile", "ttl", "status", "cwd", "timeout", "python", "listen"], bools: ["json"] };

const path = (id: string, rest = "") => `/v1/sandboxes/${encodeURIComponent(id)}${rest}`;
/** Upper bound of --ttl checked here; Bay applies its own rules on top. */
const MAX_TTL = 10 * 365 * 86400;

function positiveInt(p: Parsed, name: string, max: number): number | undefined {
  const v = flag(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new UsageError(`--${name} must be a whole number from 0 to ${max}`);
  return n;
}

export async function runSandbox(argv: string[], io: CliIo, stdin: () => Promise<string> = () => Bun.stdin.text()): Promise<number> {
  let args: Parsed;
  let command: string | undefined;
  let target: ClientTarget;
  try {
    args = parseArgs(argv, SPEC);
    if (args.flags.has("help")) {
      io.out(SANDBOX_USAGE);
      return 0;
    }
    command = args.positionals.shift();
    if (command === "create") allowOnly(args, [...CONNECTION, "profile", "ttl", "json"], 0);
    else if (command === "ls") allowOnly(args, [...CONNECTION, "status", "json"], 0);
    else if (command === "rm") {
      allowOnly(args, [...CONNECTION], Number.MAX_SAFE_INTEGER);
      if (args.positionals.length === 0) throw new UsageError("sandbox rm needs at least one sandbox id");
    } else if (command === "exec") {
      allowOnly(args, [...CONNECTION, "cwd", "timeout", "python"], Number.MAX_SAFE_INTEGER);
      if (args.positionals.length === 0) throw new UsageError("sandbox exec needs a sandbox id");
      if (args.flags.has("python") ? args.positionals.length > 1 : args.positionals.length < 2) {
        throw new UsageError(
          args.flags.has("python") ? "sandbox exec --python takes the code as its value" : "sandbox exec needs a command after the id",
        );
      }
      if (args.flags.has("python") && args.flags.has("cwd")) throw new UsageError("--cwd applies to shell commands only");
    } else if (command === "stats") {
      allowOnly(args, [...CONNECTION, "json"], Number.MAX_SAFE_INTEGER);
      if (args.positionals.length === 0) throw new UsageError("sandbox stats needs at least one sandbox id");
    } else if (command === "shell") {
      allowOnly(args, [...CONNECTION], 1);
      if (args.positionals.length === 0) throw new UsageError("sandbox shell needs a sandbox id");
    } else if (command === "cp") {
      allowOnly(args, [...CONNECTION], 2);
      if (args.positionals.length < 2) throw new UsageError("sandbox cp needs SRC and DST");
      copyEnds(args.positionals[0]!, args.positionals[1]!);
    } else if (command === "forward") {
      allowOnly(args, [...CONNECTION, "listen"], 2);
      if (args.positionals.length < 2) throw new UsageError("sandbox forward needs a sandbox id and a port");
      forwardPorts(args);
    } else throw new UsageError(command === undefined ? "missing command" : `unknown command: sandbox ${command}`);
    positiveInt(args, "ttl", MAX_TTL);
    positiveInt(args, "timeout", MAX_EXEC_TIMEOUT_SECONDS);
    target = clientTarget(io.env, flag(args, "url"), flag(args, "token"), flag(args, "owner"));
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${SANDBOX_USAGE}`);
    return 2;
  }
  try {
    if (command === "create") return await create(target, args, io);
    if (command === "ls") return await list(target, args, io);
    if (command === "rm") return await remove(target, args, io);
    if (command === "stats") return await stats(target, args, io);
    if (command === "shell") return await attachTerminal(target, args.positionals[0]!, processTerminal(), io);
    if (command === "cp") return await copy(target, args.positionals[0]!, args.positionals[1]!, io);
    if (command === "forward") return await forward(target, args, io);
    return await exec(target, args, io, stdin);
  } catch (e) {
    io.err(`bay: ${e instanceof ClientError ? e.message : errorMessage(e)}`);
    return 1;
  }
}

/** The sandbox's port and where to listen, checked. */
function forwardPorts(args: Parsed): { port: number; listen: Listen } {
  const raw = args.positionals[1]!;
  const port = /^[1-9][0-9]{0,4}$/.test(raw) ? Number(raw) : 0;
  if (port < 1 || port > 65535) throw new UsageError(`PORT must be a number from 1 to 65535, got ${raw}`);
  try {
    return { port, listen: parseListen(flag(args, "listen") ?? `127.0.0.1:${port}`) };
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
}

/** Serves until a signal ends it. */
async function forward(target: ClientTarget, args: Parsed, io: CliIo): Promise<number> {
  const { port, listen } = forwardPorts(args);
  const forwarder = await startForwarder(target, args.positionals[0]!, port, listen, io);
  onEndingSignals(["SIGINT", "SIGTERM", "SIGHUP"], () => forwarder.stop());
  return new Promise<number>(() => {});
}

async function create(target: ClientTarget, args: Parsed, io: CliIo): Promise<number> {
  const ttl = positiveInt(args, "ttl", MAX_TTL);
  const profile = flag(args, "profile");
  const sb = await request<Sandbox>(target, "POST", "/v1/sandboxes", { ...(profile ? { profile } : {}), ...(ttl ? { ttl } : {}) });
  io.out(args.flags.has("json") ? JSON.stringify(sb, null, 2) : printable(String(sb?.id)));
  return 0;
}

/** Bounds on a listing, whatever the server answers: pages followed, sandboxes kept. */
const MAX_LIST_PAGES = 1000;
const MAX_LIST_ITEMS = 200_000;

async function list(target: ClientTarget, args: Parsed, io: CliIo): Promise<number> {
  const items: Sandbox[] = [];
  const status = flag(args, "status");
  const seen = new Set<string>();
  let cursor: string | null = null;
  let pages = 0;
  do {
    if (pages >= MAX_LIST_PAGES || items.length > MAX_LIST_ITEMS) {
      throw new ClientError(`the list did not end after ${pages} pages (${items.length} sandboxes)`, "bad_answer", 200);
    }
    pages++;
    if (cursor !== null) seen.add(cursor);
    const q = new URLSearchParams({ limit: "200", ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) });
    const page: SandboxList = await request<SandboxList>(target, "GET", `/v1/sandboxes?${q}`);
    if (!Array.isArray(page?.items)) throw new ClientError("Bay's answer is not a list of sandboxes", "bad_answer", 200);
    items.push(...page.items);
    cursor = typeof page.next_cursor === "string" && page.next_cursor !== "" ? page.next_cursor : null;
    // A cursor given before would list the same pages again, forever.
    if (cursor !== null && seen.has(cursor)) throw new ClientError("Bay answered a cursor it had given before", "bad_answer", 200);
  } while (cursor);
  if (args.flags.has("json")) {
    io.out(JSON.stringify(items, null, 2));
    return 0;
  }
  if (items.length === 0) {
    io.err("no sandboxes");
    return 0;
  }
  // A server's words, shown without control characters.
  const cell = (v: unknown) => printable(String(v ?? "-"));
  const rows = items.map((s) => [s?.id, s?.status, s?.profile, s?.created_at, s?.expires_at].map(cell));
  for (const line of table([["ID", "STATUS", "PROFILE", "CREATED", "EXPIRES"], ...rows])) io.out(line);
  return 0;
}

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

const NUMBERS = ["cpu_used_pct", "cpu_count", "memory_used_bytes", "memory_limit_bytes", "disk_used_bytes", "disk_limit_bytes"] as const;
const isMetrics = (m: unknown): m is SandboxMetrics =>
  typeof m === "object" && m !== null && NUMBERS.every((k) => typeof (m as Record<string, unknown>)[k] === "number");

/** One line per sandbox (or JSON); a sandbox that cannot be read is said on stderr and fails the run. */
async function stats(target: ClientTarget, args: Parsed, io: CliIo): Promise<number> {
  let failed = 0;
  const samples: SandboxMetrics[] = [];
  const rows: string[][] = [];
  for (const id of args.positionals) {
    try {
      const m = await request<SandboxMetrics>(target, "GET", path(id, "/metrics"));
      if (!isMetrics(m)) throw new ClientError("Bay's answer is not a metrics sample", "bad_answer", 200);
      samples.push(m);
      rows.push([
        printable(id),
        m.running ? "running" : "-",
        `${m.cpu_used_pct.toFixed(1)}% of ${m.cpu_count}`,
        `${mib(m.memory_used_bytes)} / ${mib(m.memory_limit_bytes)}`,
        `${mib(m.disk_used_bytes)} / ${mib(m.disk_limit_bytes)}`,
      ]);
    } catch (e) {
      failed++;
      io.err(`bay: ${id}: ${e instanceof ClientError ? e.message : errorMessage(e)}`);
    }
  }
  if (args.flags.has("json")) io.out(JSON.stringify(samples, null, 2));
  else if (rows.length > 0) for (const line of table([["ID", "RUNTIME", "CPU", "MEMORY", "DISK"], ...rows])) io.out(line);
  return failed ? 1 : 0;
}

async function remove(target: ClientTarget, args: Parsed, io: CliIo): Promise<number> {
  let failed = 0;
  for (const id of args.positionals) {
    try {
      await request(target, "DELETE", path(id));
      io.out(`deleted ${id}`);
    } catch (e) {
      failed++;
      io.err(`bay: ${id}: ${errorMessage(e)}`);
    }
  }
  return failed ? 1 : 0;
}

async function exec(target: ClientTarget, args: Parsed, io: CliIo, stdin: () => Promise<string>): Promise<number> {
  const [id, ...words] = args.positionals as [string, ...string[]];
  const timeout = positiveInt(args, "timeout", MAX_EXEC_TIMEOUT_SECONDS);
  const python = flag(args, "python");
  if (python !== undefined) {
    const code = python === "-" ? await stdin() : python;
    const r = await streamExec<PythonExecResult>(target, path(id, "/python/exec"), { code, ...(timeout ? { timeout } : {}) }, io, "python");
    for (const d of r.data) {
      const kinds = Object.keys(d.data).filter((k) => k !== "text/plain");
      if (kinds.length) io.err(`[${d.type}: ${kinds.join(", ")} — use the REST API or MCP to fetch rich output]`);
    }
    return r.success ? 0 : 1;
  }
  const cwd = flag(args, "cwd");
  const r = await streamExec<ShellExecResult>(
    target,
    path(id, "/shell/exec"),
    { command: words.join(" "), ...(cwd ? { cwd } : {}), ...(timeout ? { timeout } : {}) },
    io,
    "shell",
  );
  if (r.truncated) io.err("[output truncated]");
  // The exit code as a process has one (0-255); anything else from the answer is a plain failure.
  const code: unknown = r.exit_code;
  return typeof code === "number" && Number.isInteger(code) && code >= 0 && code <= 255 ? code : r.success ? 0 : 1;
}
