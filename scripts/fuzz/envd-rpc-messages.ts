/**
 * Request messages for envd's Connect RPC methods (process.Process,
 * filesystem.Filesystem), in proto3 JSON form: a valid one for each method, and
 * one with a hostile field (paths that leave the home, NUL, very long or odd
 * unicode; pids and sizes out of range; unknown enum values; values of the wrong
 * JSON type), marked `reject` when Bay must refuse it. Placeholders (`{{epid.own}}`,
 * `{{ewatch.own}}`) are filled when sending, so messages that carry them go as JSON.
 *
 * Nothing here harms the fixtures other requests read: commands are short (echo,
 * true, a shell line that prints) or run under a deadline; Remove and Move's source
 * name the scratch directory `fuzz/rpc` or paths Bay must refuse, never `fuzz/hello.txt`.
 */
import { type DescMethod, ScalarType } from "@bufbuild/protobuf";
import type { Rng } from "../lib/rng.ts";
import { HOSTILE_STRINGS } from "./corpus.ts";
import { e2bEscapes } from "./e2b.ts";

export interface RpcMessage {
  /** The message as proto3 JSON (before placeholders are filled). */
  json: unknown;
  /** What it is, for the report. */
  tag: string;
  /** Why Bay must refuse it, when it must. */
  reject?: string;
  /** A Start that needs a deadline (Connect-Timeout-Ms): a terminal, or a command that may wait. */
  needsDeadline?: boolean;
}

/** The scratch directory of the envd calls (the fixtures create it). */
export const RPC_SCRATCH = "/home/user/fuzz/rpc";
/** Paths that exist or may: reading, watching, making directories. */
const SAFE_PATHS = ["/home/user/fuzz", "/home/user/fuzz/hello.txt", "fuzz/rpc", "~/fuzz/rpc", "/workspace/fuzz/rpc", "", "~"];
/** Paths under the scratch directory: what Remove and Move may change. */
const SCRATCH_PATHS = [
  `${RPC_SCRATCH}/a`,
  "fuzz/rpc/b",
  "~/fuzz/rpc/c/d",
  `${RPC_SCRATCH}/é😀`,
  "fuzz/rpc/../rpc2",
  "/workspace/fuzz/rpc/e",
];
/** Paths that stress the path rules; the ones that leave the home must be refused (e2bEscapes). */
export const HOSTILE_RPC_PATHS: ReadonlyArray<readonly [string, string]> = [
  ["dotdot", ".."],
  ["home-dotdot", "/home/user/.."],
  ["escape", "/home/user/../../etc/passwd"],
  ["proc-root", "/proc/1/root"],
  ["proc-root-etc", "/proc/1/root/etc/shadow"],
  ["proc-self", "/proc/self/environ"],
  ["etc", "/etc/passwd"],
  ["slash", "/"],
  ["double-slash", "//etc/passwd"],
  ["tmp", "/tmp"],
  ["nul", "/home/user/fuzz/a\u0000b"],
  ["only-nul", "\u0000"],
  ["long-4097", `/home/user/${"p".repeat(4097)}`],
  ["segments-2000", `fuzz/rpc/${"d/".repeat(2000)}f`],
  ["length-70k", "x".repeat(70_000)],
  ["e-acute-200", `fuzz/rpc/${"é".repeat(200)}`],
  ["rtl-override", "fuzz/rpc/a\u202etxt"],
  ["lone-surrogate", "fuzz/rpc/\ud800"],
  ["percent-dots", "fuzz/%2e%2e/%2e%2e/x"],
  ["backslash", "fuzz\\..\\..\\x"],
  ["tilde-user", "~root/x"],
  ["workspace-escape", "/workspace/../etc"],
  ["home-prefix", "/home/userx/a"],
  ["newline", "fuzz/rpc/a\nb"],
  ["trailing-dotdot", "fuzz/rpc/.."],
  ["deep-escape", "fuzz/rpc/../../../x"],
];

/** Pids that name no process of the sandbox's (or none that Bay started), and ones out of uint32's range. */
const FAKE_PIDS: ReadonlyArray<readonly [string, unknown, boolean]> = [
  ["pid 0", 0, false],
  ["pid 1", 1, false],
  ["pid 999999", 999_999, false],
  ["pid max", 4_294_967_295, false],
  ["pid as string", "77", false],
  ["pid -1", -1, true],
  ["pid 2^32", 4_294_967_296, true],
  ["pid 1.5", 1.5, true],
  ["pid text", "abc", true],
];

/** A path for a field, and whether it leaves the sandbox's files. */
function path(rng: Rng, destructive: boolean, hostile: boolean): { tag: string; value: string; escapes: boolean } {
  if (hostile) {
    const [tag, value] = rng.pick(HOSTILE_RPC_PATHS);
    return { tag, value, escapes: e2bEscapes(value) };
  }
  const value = rng.pick(destructive ? SCRATCH_PATHS : [...SAFE_PATHS, ...SCRATCH_PATHS]);
  return { tag: "path", value, escapes: false };
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const pidSelector = (pid: unknown) => ({ pid });
const REAL_PID = "{{epid.own}}";
/** A running terminal (`/bin/bash` on a pty): what Update resizes. */
const REAL_PTY = "{{epty.own}}";

/** A pid selector: the running fixture's pid or a hostile one (`reject`: not even a uint32). */
function selector(rng: Rng, hostile: boolean): { sel: unknown; tag: string; reject?: string } {
  if (!hostile) return { sel: pidSelector(REAL_PID), tag: "real pid" };
  const kind = rng.weighted({ fake: 5, tag: 1, empty: 1 });
  if (kind === "tag")
    return { sel: { tag: rng.pick(["x", "", "fuzz"]) }, tag: "tag selector", reject: "Bay selects processes by pid only" };
  if (kind === "empty") return { sel: {}, tag: "empty selector", reject: "a selector that names nothing" };
  const [tag, pid, bad] = rng.pick(FAKE_PIDS);
  return { sel: pidSelector(pid), tag, ...(bad ? { reject: "a pid that is not a uint32" } : {}) };
}

/** Start: short commands (valid), and hostile commands, arguments, variables, directories and terminals. */
function start(rng: Rng, hostile: boolean): RpcMessage {
  if (!hostile) {
    const [tag, process] = rng.pick([
      ["echo", { cmd: "echo", args: ["fuzz"] }],
      ["echo path", { cmd: "/bin/echo", args: [] }],
      ["true", { cmd: "true" }],
      ["sh exit 3", { cmd: "/bin/sh", args: ["-c", "echo out; echo err >&2; exit 3"] }],
      ["printf unicode", { cmd: "printf", args: ["%s\\n", "é😀\u202e"] }],
      ["ls", { cmd: "ls", args: ["-la", RPC_SCRATCH], cwd: "/home/user" }],
      ["100 KB output", { cmd: "/bin/sh", args: ["-c", "head -c 100000 /dev/zero | base64"] }],
      ["env", { cmd: "/bin/sh", args: ["-c", "echo $FUZZ"], envs: { FUZZ: "é😀" } }],
    ] as const);
    return { json: { process, ...(rng.chance(0.2) ? { stdin: false } : {}) }, tag: `Start ${tag}` };
  }
  const kind = rng.weighted({ cmd: 3, args: 2, envs: 2, cwd: 3, pty: 2, noProcess: 1, stdin: 1, tag: 1 });
  const echo = { cmd: "echo", args: ["fuzz"] };
  switch (kind) {
    case "cmd": {
      const [tag, cmd] = rng.pick([
        ["empty", ""],
        ["nul", "ech\u0000o"],
        ["missing", "/nonexistent/fuzz"],
        ["directory", "/home/user"],
        ["not executable", "/etc/passwd"],
        ["proc root sh", "/proc/1/root/bin/true"],
        ["long", "e".repeat(70_000)],
        ["newline", "echo\nid"],
        ["shell text", "echo fuzz; id"],
      ] as const);
      return {
        json: { process: { cmd } },
        tag: `Start cmd ${tag}`,
        needsDeadline: true,
        ...(cmd === "" ? { reject: "process.cmd is required" } : {}),
      };
    }
    case "args": {
      const [tag, args] = rng.pick([
        ["10000", Array.from({ length: 10_000 }, () => "x")],
        ["nul", ["a\u0000b"]],
        ["1 MiB", ["a".repeat(1024 * 1024)]],
        ["wrong type", [1, null]],
        ["not a list", "fuzz"],
      ] as const);
      const wrong = tag === "wrong type" || tag === "not a list";
      return {
        json: { process: { ...echo, args } },
        tag: `Start args ${tag}`,
        needsDeadline: true,
        ...(wrong ? { reject: "args of the wrong JSON type" } : {}),
      };
    }
    case "envs": {
      const [tag, envs] = rng.pick([
        ["nul name", { "A\u0000B": "x" }],
        ["empty name", { "": "x" }],
        ["equals in name", { "A=B": "x" }],
        ["2000 vars", Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`V${i}`, "x"]))],
        ["1 MiB value", { BIG: "v".repeat(1024 * 1024) }],
        ["PATH empty", { PATH: "" }],
        ["number value", { N: 1 }],
      ] as const);
      return {
        json: { process: { ...echo, envs } },
        tag: `Start envs ${tag}`,
        needsDeadline: true,
        ...(tag === "number value" ? { reject: "an env value that is not a string" } : {}),
      };
    }
    case "cwd": {
      const p = path(rng, false, true);
      return {
        json: { process: { ...echo, cwd: p.value } },
        tag: `Start cwd ${p.tag}`,
        needsDeadline: true,
        ...(p.escapes ? { reject: "a cwd outside the sandbox's files" } : {}),
      };
    }
    case "pty": {
      const [tag, size] = rng.pick([
        ["80x24", { cols: 80, rows: 24 }],
        ["0x0", { cols: 0, rows: 0 }],
        ["65535", { cols: 65_535, rows: 65_535 }],
        ["uint32 max", { cols: 4_294_967_295, rows: 1 }],
        ["negative", { cols: -1, rows: 24 }],
      ] as const);
      return {
        json: { process: { cmd: "/bin/bash", args: ["-l"] }, pty: { size } },
        tag: `Start pty ${tag}`,
        needsDeadline: true,
        ...(tag === "negative" ? { reject: "a terminal size that is not a uint32" } : {}),
      };
    }
    case "noProcess":
      return { json: rng.pick([{}, { stdin: true }, { process: {} }]), tag: "Start without a command", reject: "process.cmd is required" };
    case "stdin":
      return { json: { process: echo, stdin: true }, tag: "Start stdin", needsDeadline: true };
    default: {
      const [t, s] = rng.pick(HOSTILE_STRINGS);
      return { json: { process: echo, tag: s }, tag: `Start tag ${t}`, needsDeadline: true };
    }
  }
}

/** A message for `method` (`Service/Method`, e.g. `process.Process/Start`); `hostile`: one field made hostile. */
export function rpcMessage(rng: Rng, method: string, hostile: boolean): RpcMessage {
  const name = method.split("/")[1]!;
  switch (method) {
    case "process.Process/List":
      return hostile ? { json: { fuzz: [1, 2] }, tag: "List with an unknown field" } : { json: {}, tag: "List" };
    case "process.Process/Start":
      return start(rng, hostile);
    case "process.Process/Connect":
    case "process.Process/CloseStdin": {
      const s = selector(rng, hostile);
      return { json: { process: s.sel }, tag: `${name} ${s.tag}`, ...(s.reject ? { reject: s.reject } : {}) };
    }
    case "process.Process/SendInput": {
      const s = selector(rng, hostile && rng.chance(0.6));
      const [tag, input, bad] = hostile
        ? rng.pick([
            ["pty bytes", { pty: b64("ls\n") }, false],
            ["256 KiB", { stdin: b64("i".repeat(256 * 1024)) }, false],
            ["bad base64", { stdin: "!!not base64!!" }, true],
            ["no input", {}, true],
            ["both", { stdin: b64("a"), pty: b64("b") }, true],
          ] as const)
        : (["stdin", { stdin: b64("hello from the fuzzer\n") }, false] as const);
      return {
        json: { process: s.sel, input },
        tag: `SendInput ${s.tag} ${tag}`,
        ...(s.reject || bad ? { reject: s.reject ?? `input ${tag}` } : {}),
      };
    }
    case "process.Process/SendSignal": {
      const s = selector(rng, hostile || rng.chance(0.7));
      const [tag, signal] = rng.pick([
        ["SIGTERM", "SIGNAL_SIGTERM"],
        ["SIGKILL", "SIGNAL_SIGKILL"],
        ["unspecified", "SIGNAL_UNSPECIFIED"],
        ["unknown number", 42],
        ["unknown name", "SIGNAL_SIGSTOP"],
      ] as const);
      return { json: { process: s.sel, signal }, tag: `SendSignal ${s.tag} ${tag}`, ...(s.reject ? { reject: s.reject } : {}) };
    }
    case "process.Process/Update": {
      const s = hostile ? selector(rng, true) : { sel: pidSelector(REAL_PTY), tag: "real pty" };
      const size = rng.pick([
        { cols: 100, rows: 40 },
        { cols: 0, rows: 0 },
        { cols: 4_294_967_295, rows: 4_294_967_295 },
      ]);
      return { json: { process: s.sel, pty: { size } }, tag: `Update ${s.tag}`, ...(s.reject ? { reject: s.reject } : {}) };
    }
    case "process.Process/StreamInput":
      return { json: { start: { process: pidSelector(REAL_PID) } }, tag: "StreamInput start" };
    case "filesystem.Filesystem/Stat":
    case "filesystem.Filesystem/MakeDir":
    case "filesystem.Filesystem/Remove": {
      const p = path(rng, name === "Remove", hostile);
      return { json: { path: p.value }, tag: `${name} ${p.tag}`, ...(p.escapes ? { reject: "a path outside the sandbox's files" } : {}) };
    }
    case "filesystem.Filesystem/ListDir": {
      const p = path(rng, false, hostile && rng.chance(0.7));
      const [dtag, depth, bad] = hostile
        ? rng.pick([
            ["depth 0", 0, false],
            ["depth 100", 100, false],
            ["depth max", 4_294_967_295, false],
            ["depth -1", -1, true],
            ["depth text", "deep", true],
          ] as const)
        : (["depth 1", rng.pick([1, 2]), false] as const);
      const reject = p.escapes ? "a path outside the sandbox's files" : bad ? "a depth that is not a uint32" : undefined;
      return { json: { path: p.value, depth }, tag: `ListDir ${p.tag} ${dtag}`, ...(reject ? { reject } : {}) };
    }
    case "filesystem.Filesystem/Move": {
      const src = path(rng, true, hostile && rng.chance(0.5));
      const dst = path(rng, true, hostile && !src.escapes && src.tag === "path" ? true : hostile && rng.chance(0.3));
      const reject = src.escapes || dst.escapes ? "a path outside the sandbox's files" : undefined;
      return {
        json: { source: src.value, destination: dst.value },
        tag: `Move ${src.tag} to ${dst.tag}`,
        ...(reject ? { reject } : {}),
      };
    }
    case "filesystem.Filesystem/WatchDir":
    case "filesystem.Filesystem/CreateWatcher": {
      const p = path(rng, false, hostile);
      return {
        json: { path: p.value, recursive: rng.chance(0.5) },
        tag: `${name} ${p.tag}`,
        ...(p.escapes ? { reject: "a path outside the sandbox's files" } : {}),
      };
    }
    case "filesystem.Filesystem/GetWatcherEvents":
    case "filesystem.Filesystem/RemoveWatcher": {
      if (!hostile) return { json: { watcherId: "{{ewatch.own}}" }, tag: `${name} own watcher` };
      const kind = rng.weighted({ other: 2, unknown: 1, hostile: 2 });
      if (kind === "other")
        return { json: { watcherId: "{{ewatch.other}}" }, tag: `${name} bob's watcher`, reject: "another sandbox's watcher" };
      if (kind === "unknown")
        return { json: { watcherId: "watcher-fuzz-unknown" }, tag: `${name} unknown watcher`, reject: "no such watcher" };
      const [t, s] = rng.pick(HOSTILE_STRINGS);
      return { json: { watcherId: s }, tag: `${name} watcher id ${t}`, reject: "no such watcher" };
    }
    default:
      return { json: {}, tag: `${name} empty` };
  }
}

/** Bytes that are no protobuf message: a varint that never ends, a length past the end, a group never closed. */
export const BAD_PROTO: ReadonlyArray<readonly [string, number[]]> = [
  ["endless varint", [0x08, ...Array(11).fill(0xff)]],
  ["length past the end", [0x0a, 0x40, 0x61, 0x62]],
  ["open group", [0x0b]],
  ["field 0", [0x00, 0x01]],
];

/** The input message with its first field given a value of the wrong JSON type (undefined: it has no field). */
export function wrongTypeJson(method: DescMethod): string | undefined {
  const f = method.input.fields[0];
  if (!f) return undefined;
  const scalarWrong = (t: ScalarType | undefined) =>
    t === ScalarType.STRING ? 5 : t === ScalarType.BOOL ? "maybe" : t === ScalarType.BYTES ? "!!not base64!!" : "abc";
  const value =
    f.fieldKind === "scalar"
      ? scalarWrong(f.scalar)
      : f.fieldKind === "enum"
        ? {}
        : f.fieldKind === "map"
          ? []
          : f.fieldKind === "list"
            ? 7
            : "x";
  return JSON.stringify({ [f.jsonName]: value });
}
