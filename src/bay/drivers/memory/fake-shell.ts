/**
 * The in-memory fake Ship's shell: a few commands over the workspace volume, so
 * lifecycle tests can run `echo hi > f.txt && cat f.txt` and read real answers.
 *
 * Commands: echo [-n], cat, ls, pwd, rm [-r] [-f], sleep, true, false, exit [n].
 * Syntax: words with '…' and "…" quoting, $NAME / ${NAME} expansion (of HOME, PWD
 * and the request's env only), `>` and `>>` redirection of stdout, and `;`, `&&`,
 * `||`, newlines between commands. Anything else (other options, pipes, globs,
 * subshells, other variables, other programs) fails the way bash fails on a
 * missing program: exit 127 and a message naming the fake.
 */
import { BayError } from "../../errors.ts";

/** The workspace as the shell sees it; paths are relative to its root ("." is the root). */
export interface ShellHost {
  readText(path: string): Promise<string>;
  writeText(path: string, text: string): Promise<void>;
  list(path: string): Promise<string[]>;
  remove(path: string): Promise<void>;
  sleep(seconds: number, signal: AbortSignal): Promise<void>;
}

export interface ShellRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

type Tok = { k: "word"; v: string } | { k: "op"; v: string };

/** Syntax the fake does not implement: the command is refused as a whole. */
class Unsupported extends Error {}

const WORKSPACE = "/workspace";
const COMMANDS = new Set(["true", ":", "false", "pwd", "echo", "sleep", "cat", "ls", "rm"]);

function lex(command: string, env: Record<string, string>): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let word: string | null = null;
  const flush = () => {
    if (word !== null) out.push({ k: "word", v: word });
    word = null;
  };
  const expand = (): string => {
    const rest = command.slice(i + 1);
    const m = /^\{(\w+)\}|^(\w+)/.exec(rest);
    if (!m) {
      if (/^[^\s"]/.test(rest)) throw new Unsupported(`'$${rest[0]}'`);
      i++;
      return "$";
    }
    i += 1 + m[0].length;
    const name = m[1] ?? m[2]!;
    // Only the variables the fake knows: an unknown one would be set in a real Ship (PATH, LANG, …).
    if (!(name in env)) throw new Unsupported(`the variable $${name}`);
    return env[name]!;
  };
  while (i < command.length) {
    const c = command[i]!;
    if (c === " " || c === "\t") {
      flush();
      i++;
    } else if (c === "\n" || c === ";") {
      flush();
      out.push({ k: "op", v: ";" });
      i++;
    } else if (command.startsWith("&&", i) || command.startsWith("||", i) || command.startsWith(">>", i)) {
      flush();
      out.push({ k: "op", v: command.slice(i, i + 2) });
      i += 2;
    } else if ("|&><()`*?".includes(c)) {
      flush();
      out.push({ k: "op", v: c });
      i++;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new SyntaxError("unexpected EOF while looking for matching `''");
      word = (word ?? "") + command.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      word ??= "";
      i++;
      while (i < command.length && command[i] !== '"') {
        if (command[i] === "$") word += expand();
        else if (command[i] === "\\" && i + 1 < command.length && '"\\$'.includes(command[i + 1]!)) {
          word += command[i + 1];
          i += 2;
        } else word += command[i++];
      }
      if (i >= command.length) throw new SyntaxError("unexpected EOF while looking for matching `\"'");
      i++;
    } else if (c === "$") word = (word ?? "") + expand();
    else if (c === "\\" && i + 1 < command.length) {
      word = (word ?? "") + command[i + 1];
      i += 2;
    } else {
      word = (word ?? "") + c;
      i++;
    }
  }
  flush();
  return out;
}

/** Runs a command line in `cwd` (relative to the workspace root) until it ends or `signal` aborts. */
export async function runShell(
  host: ShellHost,
  command: string,
  cwd: string,
  env: Record<string, string>,
  signal: AbortSignal,
): Promise<ShellRun> {
  let stdout = "";
  let stderr = "";
  let status = 0;
  const shellEnv: Record<string, string> = { HOME: WORKSPACE, PWD: cwd === "." ? WORKSPACE : `${WORKSPACE}/${cwd}`, ...env };
  let toks: Tok[];
  try {
    toks = lex(command, shellEnv);
  } catch (e) {
    if (e instanceof Unsupported)
      return { exitCode: 127, stdout, stderr: `bash: the in-memory fake Ship's shell does not support ${e.message}\n` };
    return { exitCode: 2, stdout, stderr: `bash: -c: line 1: ${(e as Error).message}\n` };
  }
  const pathOf = (p: string): string | null => {
    const abs = p.startsWith("/") ? p : `${shellEnv.PWD}/${p}`;
    const parts: string[] = [];
    for (const seg of abs.split("/")) {
      if (seg === "" || seg === ".") continue;
      if (seg === "..") parts.pop();
      else parts.push(seg);
    }
    const full = `/${parts.join("/")}`;
    if (full === WORKSPACE) return ".";
    return full.startsWith(`${WORKSPACE}/`) ? full.slice(WORKSPACE.length + 1) : null;
  };
  const why = (e: unknown) =>
    e instanceof BayError && e.code === "file_not_found"
      ? "No such file or directory"
      : e instanceof BayError && e.code === "validation_error"
        ? "Is a directory"
        : "Permission denied";

  let at = 0;
  let skip = false;
  while (at < toks.length) {
    let end = at;
    while (end < toks.length && !(toks[end]!.k === "op" && [";", "&&", "||"].includes(toks[end]!.v))) end++;
    const words: string[] = [];
    let redirect: { path: string; append: boolean } | null = null;
    let unsupported: string | null = null;
    for (let j = at; j < end; j++) {
      const t = toks[j]!;
      if (t.k === "op" && (t.v === ">" || t.v === ">>") && toks[j + 1]?.k === "word") {
        redirect = { path: toks[++j]!.v, append: t.v === ">>" };
      } else if (t.k === "op") unsupported ??= t.v;
      else words.push(t.v);
    }
    const joiner = toks[end]?.v;
    if (!skip && words.length > 0) {
      if (signal.aborted) break;
      let out = "";
      const refuse = (what: string) => {
        stderr += `bash: the in-memory fake Ship's shell does not support ${what}\n`;
        return 127;
      };
      const run = async (): Promise<number> => {
        if (unsupported) return refuse(`'${unsupported}'`);
        const [name, ...args] = words as [string, ...string[]];
        if (!COMMANDS.has(name)) {
          stderr += `bash: line 1: ${name}: command not found (the in-memory fake Ship's shell)\n`;
          return 127;
        }
        // Options the fake does not implement are refused, never ignored (echo reads them only up front).
        const options =
          name === "echo"
            ? args.slice(0, 2).filter((a, i) => /^-[a-zA-Z]+$/.test(a) && (i === 0 || args[0] === "-n"))
            : args.filter((a) => a.startsWith("-"));
        const allowed = name === "echo" ? ["-n"] : name === "rm" ? ["-r", "-f", "-rf", "-fr"] : [];
        const odd = options.find((o, i) => !allowed.includes(o) || (name === "echo" && i > 0));
        if (odd) return refuse(`'${name} ${odd}'`);
        switch (name) {
          case "true":
          case ":":
            return 0;
          case "false":
            return 1;
          case "pwd":
            out += `${shellEnv.PWD}\n`;
            return 0;
          case "echo": {
            const noNewline = args[0] === "-n";
            out += (noNewline ? args.slice(1) : args).join(" ") + (noNewline ? "" : "\n");
            return 0;
          }
          case "sleep":
            if (args.length !== 1 || !/^\d+(\.\d+)?$/.test(args[0]!)) return refuse(`'sleep ${args.join(" ")}'`);
            await host.sleep(Number(args[0]), signal);
            return 0;
          case "cat": {
            let code = 0;
            for (const a of args) {
              const p = pathOf(a);
              try {
                if (p === null) throw new Error("outside");
                out += await host.readText(p);
              } catch (e) {
                stderr += `cat: ${a}: ${why(e)}\n`;
                code = 1;
              }
            }
            return code;
          }
          case "ls": {
            if (args.length > 1) return refuse("'ls' of several paths");
            const target = args[0] ?? ".";
            const p = pathOf(target);
            try {
              if (p === null) throw new Error("outside");
              const names = (await host.list(p)).filter((n) => !n.startsWith(".")).sort();
              out += names.map((n) => `${n}\n`).join("");
              return 0;
            } catch (e) {
              stderr += `ls: cannot access '${target}': ${why(e)}\n`;
              return 2;
            }
          }
          case "rm": {
            const force = args.some((a) => /^-\w*f/.test(a));
            let code = 0;
            for (const a of args.filter((x) => !x.startsWith("-"))) {
              const p = pathOf(a);
              try {
                if (p === null || p === ".") throw new Error("refused");
                await host.remove(p);
              } catch (e) {
                if (force && e instanceof BayError && e.code === "file_not_found") continue;
                stderr += `rm: cannot remove '${a}': ${why(e)}\n`;
                code = 1;
              }
            }
            return code;
          }
        }
        return 127; // not reached: COMMANDS lists the cases above
      };
      if (words[0] === "exit") {
        status = Number(words[1] ?? status) & 255;
        break;
      }
      status = await run();
      if (redirect) {
        const p = pathOf(redirect.path);
        try {
          if (p === null) throw new Error("outside");
          const before = redirect.append ? await host.readText(p).catch(() => "") : "";
          await host.writeText(p, before + out);
        } catch (e) {
          stderr += `bash: ${redirect.path}: ${why(e)}\n`;
          status = 1;
        }
      } else stdout += out;
    }
    // `a && b`: b runs only when a succeeded; `a || b` only when it failed; `;` always.
    skip = joiner === "&&" ? status !== 0 : joiner === "||" ? status === 0 : false;
    at = end + 1;
  }
  return { exitCode: status, stdout, stderr };
}
