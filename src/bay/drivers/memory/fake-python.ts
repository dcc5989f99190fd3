/**
 * The in-memory fake Ship's Python kernel: runs the subset parsed by
 * fake-python-parse.ts with Python's answers for it (ints are arbitrary
 * precision, `/` gives a float, `print` and the last expression's repr make the
 * output, errors come back as a traceback). Variables live as long as the
 * container, like a real kernel's. The only world it sees is the workspace
 * volume (`open` under /workspace) and a clock (`time.time`, `time.sleep`).
 * One cell runs at a time; a cell past its timeout answers Ship's `timeout`.
 *
 * What the subset lacks (other builtins, modules, methods, types, operand
 * mixes) raises NotImplementedError naming the fake, never a made-up answer.
 */
import type { PythonExecResult } from "../../../protocol/ship/index.ts";
import { BayError } from "../../errors.ts";
import { type Expr, parseCell, PyError, type Stmt, unsupported } from "./fake-python-parse.ts";

/** What the kernel reaches outside itself: the workspace (paths relative to it) and time. */
export interface KernelHost {
  /** The text of a file; throws a PyError naming it as `shown` when it cannot be read. */
  readText(path: string, shown: string): Promise<string>;
  /** Replaces a file's text; throws a PyError naming it as `shown` when it cannot be written. */
  writeText(path: string, text: string, shown: string): Promise<void>;
  sleep(seconds: number, signal: AbortSignal): Promise<void>;
}

interface PyFile {
  t: "file";
  path: string;
  mode: string;
  text: string;
  closed: boolean;
}
interface PyFunction {
  t: "function";
  name: string;
  call(args: Value[], kwargs: Record<string, Value>): Value | Promise<Value>;
}
interface PyModule {
  t: "module";
  name: string;
  attrs: Record<string, PyFunction>;
}
type Value = bigint | number | string | boolean | null | PyFile | PyFunction | PyModule;

/** Cells that may wait behind the running one, as Ship's MAX_QUEUED_EXECS. */
const MAX_QUEUED = 8;
const WORKSPACE = "/workspace";
/** Python builtins the subset lacks: using one is refused, never a NameError. */
const MISSING_BUILTINS = new Set(
  "abs all any ascii bin bool bytearray bytes callable chr compile delattr dict dir divmod enumerate eval exec filter float format frozenset getattr globals hasattr hash help hex id input isinstance issubclass iter list locals map max memoryview min next object oct ord pow property range reversed round set setattr slice sorted staticmethod sum super tuple type vars zip __import__ __name__ Exception ValueError TypeError".split(
    " ",
  ),
);

const typeName = (v: Value): string => {
  if (typeof v === "bigint") return "int";
  if (typeof v === "number") return "float";
  if (typeof v === "string") return "str";
  if (typeof v === "boolean") return "bool";
  if (v === null) return "NoneType";
  return v.t === "file" ? "_io.TextIOWrapper" : v.t === "function" ? "builtin_function_or_method" : "module";
};

/** Python's float repr: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
function floatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (Object.is(x, -0)) return "-0.0";
  const [mantissa, exp] = x.toExponential().split("e") as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  const s = String(x);
  return s.includes(".") ? s : `${s}.0`;
}

function strRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const named: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r" };
  const body = s.replace(/[\\\n\t\r\x00-\x1f\x7f]/g, (c) => named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return quote + (quote === "'" ? body.replaceAll("'", "\\'") : body) + quote;
}

/** Python's repr() of a value. */
export function repr(v: Value): string {
  if (typeof v === "bigint") return String(v);
  if (typeof v === "number") return floatRepr(v);
  if (typeof v === "string") return strRepr(v);
  if (typeof v === "boolean") return v ? "True" : "False";
  if (v === null) return "None";
  if (v.t === "file") return `<_io.TextIOWrapper name='${v.path}' mode='${v.mode}' encoding='UTF-8'>`;
  if (v.t === "function") return `<built-in function ${v.name}>`;
  return `<module '${v.name}' (built-in)>`;
}

const str = (v: Value): string => (typeof v === "string" ? v : repr(v));
const truthy = (v: Value): boolean => (v === null ? false : typeof v === "object" ? true : typeof v === "bigint" ? v !== 0n : Boolean(v));
const isNum = (v: Value): v is bigint | number | boolean => typeof v === "bigint" || typeof v === "number" || typeof v === "boolean";
const toInt = (v: bigint | boolean): bigint => (typeof v === "boolean" ? BigInt(v) : v);
const operands = (a: Value, op: string, b: Value) => unsupported(`'${typeName(a)}' ${op} '${typeName(b)}'`);

function arithmetic(op: string, a: Value, b: Value): Value {
  if (op === "+" && typeof a === "string" && typeof b === "string") return a + b;
  if (op === "*" && typeof a === "string" && typeof b === "bigint") return a.repeat(Math.max(0, Number(b)));
  if (!isNum(a) || !isNum(b)) throw operands(a, op, b);
  if (typeof a !== "number" && typeof b !== "number" && op !== "/") {
    const [x, y] = [toInt(a), toInt(b)];
    if ((op === "//" || op === "%") && y === 0n) throw new PyError("ZeroDivisionError", "integer division or modulo by zero");
    if (op === "+") return x + y;
    if (op === "-") return x - y;
    if (op === "*") return x * y;
    if (op === "**") return y < 0n ? Number(x) ** Number(y) : x ** y;
    if (op === "//") return x % y !== 0n && x < 0n !== y < 0n ? x / y - 1n : x / y;
    if (op === "%") return ((x % y) + y) % y;
  }
  const [x, y] = [Number(a), Number(b)];
  if ((op === "/" || op === "//" || op === "%") && y === 0) {
    throw new PyError("ZeroDivisionError", op === "/" ? "division by zero" : "float floor division by zero");
  }
  if (op === "+") return x + y;
  if (op === "-") return x - y;
  if (op === "*") return x * y;
  if (op === "/") return x / y;
  if (op === "//") return Math.floor(x / y);
  if (op === "%") return ((x % y) + y) % y;
  if (op === "**") return x ** y;
  throw operands(a, op, b);
}

function compare(op: string, a: Value, b: Value): boolean {
  const nums = isNum(a) && isNum(b);
  const strs = typeof a === "string" && typeof b === "string";
  if (op === "==" || op === "!=") {
    if (!nums && !strs && typeName(a) !== typeName(b)) return op === "!=";
    const floats = typeof a === "number" || typeof b === "number";
    const eq = !nums ? a === b : floats ? Number(a) === Number(b) : toInt(a as bigint | boolean) === toInt(b as bigint | boolean);
    return op === "==" ? eq : !eq;
  }
  if (!nums && !strs) throw operands(a, op, b);
  const [x, y] = strs ? [a, b] : [Number(a), Number(b)];
  return op === "<" ? x < y : op === ">" ? x > y : op === "<=" ? x <= y : x >= y;
}

/** A path as the kernel sees it (absolute under /workspace, or relative to it) → relative to the workspace. */
function workspacePath(path: Value): string {
  if (typeof path !== "string") throw unsupported(`open() of a ${typeName(path)}`);
  if (path === WORKSPACE) return ".";
  if (!path.startsWith("/")) return path;
  if (!path.startsWith(`${WORKSPACE}/`)) throw unsupported(`a path outside /workspace ('${path}')`);
  return path.slice(WORKSPACE.length + 1) || ".";
}

/** The functions bound to one cell: its output and its deadline. */
interface Cell {
  print: PyFunction["call"];
  sleep: PyFunction["call"];
}

export class FakePythonKernel {
  private readonly globals = new Map<string, Value>();
  private executionCount = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private readonly builtins: Record<string, PyFunction>;
  private readonly time: PyModule;

  constructor(private readonly host: KernelHost) {
    const fn = (name: string, call: PyFunction["call"]): PyFunction => ({ t: "function", name, call });
    this.builtins = Object.fromEntries(
      [
        fn("print", () => null), // bound per cell: it writes to that cell's output
        fn("len", ([v]) => {
          if (typeof v === "string") return BigInt([...v].length);
          throw new PyError("TypeError", `object of type '${typeName(v ?? null)}' has no len()`);
        }),
        fn("str", ([v]) => (v === undefined ? "" : str(v))),
        fn("repr", ([v]) => repr(v ?? null)),
        fn("int", ([v]) => {
          if (typeof v === "number") return BigInt(Math.trunc(v));
          if (typeof v === "bigint" || typeof v === "boolean") return toInt(v);
          if (typeof v !== "string") throw unsupported(`int() of a ${typeName(v ?? null)}`);
          if (/^\s*[-+]?\d+\s*$/.test(v)) return BigInt(v.trim());
          throw new PyError("ValueError", `invalid literal for int() with base 10: ${repr(v)}`);
        }),
        fn("open", (args, kwargs) => this.open(args[0] ?? null, args[1] ?? kwargs.mode ?? "r")),
      ].map((f) => [f.name, f]),
    );
    // sleep is bound per cell: it ends at that cell's deadline.
    this.time = { t: "module", name: "time", attrs: { time: fn("time", () => Date.now() / 1000), sleep: fn("sleep", () => null) } };
  }

  /** Runs a cell as Ship's POST /ipython/exec does; at most MAX_QUEUED cells wait behind the running one. */
  exec(code: string, timeoutSeconds: number, signal?: AbortSignal): Promise<PythonExecResult> {
    if (this.waiting >= MAX_QUEUED) {
      return Promise.reject(
        new BayError("quota_exceeded", `too many python execs waiting (max ${MAX_QUEUED}); try again later`, {
          details: { max_queued: MAX_QUEUED },
        }),
      );
    }
    this.waiting++;
    const run = this.queue.then(() => {
      this.waiting--;
      if (signal?.aborted) {
        throw new BayError("timeout", "the client gave up before this exec started; it was not run", {
          details: { timeout: 0, output: "", kernel_restarted: false },
        });
      }
      return this.run(code, timeoutSeconds);
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private async run(code: string, timeoutSeconds: number): Promise<PythonExecResult> {
    const count = code.trim() === "" ? null : ++this.executionCount;
    let output = "";
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutSeconds * 1000);
    const cell: Cell = {
      print: (args, kwargs) => {
        const extra = Object.keys(kwargs).find((k) => k !== "sep" && k !== "end");
        if (extra) throw unsupported(`print(${extra}=…)`);
        output +=
          args.map(str).join(kwargs.sep === undefined ? " " : str(kwargs.sep)) + (kwargs.end === undefined ? "\n" : str(kwargs.end));
        return null;
      },
      sleep: async ([s]) => {
        if (!isNum(s ?? null)) throw new PyError("TypeError", `'${typeName(s ?? null)}' object cannot be interpreted as an integer`);
        await this.host.sleep(Number(s), deadline.signal);
        return null;
      },
    };
    try {
      const stmts = parseCell(code);
      let last: Value = null;
      for (const [i, s] of stmts.entries()) {
        const value = await this.stmt(s, cell);
        last = i === stmts.length - 1 && s.k === "expr" ? value : null;
      }
      const data: PythonExecResult["data"] = [];
      if (last !== null) {
        const text = repr(last);
        data.push({ type: "execute_result", data: { "text/plain": text } });
        output += `${output && !output.endsWith("\n") ? "\n" : ""}${text}\n`;
      }
      return { success: true, output, error: null, data, execution_count: count, kernel_restarted: false };
    } catch (e) {
      if (deadline.signal.aborted) {
        throw new BayError("timeout", `python execution timed out after ${timeoutSeconds}s`, {
          details: { timeout: timeoutSeconds, output, kernel_restarted: false },
        });
      }
      if (!(e instanceof PyError)) throw e;
      const error = `Traceback (most recent call last):\n  Cell In[${count ?? 0}], line ${e.line}\n${e.type}: ${e.message}`;
      return { success: false, output, error, data: [], execution_count: count, kernel_restarted: false };
    } finally {
      clearTimeout(timer);
    }
  }

  private async stmt(s: Stmt, cell: Cell): Promise<Value> {
    try {
      switch (s.k) {
        case "pass":
          return null;
        case "import":
          for (const name of s.names) {
            if (name !== "time") throw unsupported(`the module '${name}'`);
            this.globals.set(name, this.time);
          }
          return null;
        case "assign": {
          const value = await this.eval(s.x, cell);
          this.globals.set(s.name, s.op === "=" ? value : arithmetic(s.op[0]!, this.lookup(s.name), value));
          return null;
        }
        case "expr":
          return await this.eval(s.x, cell);
      }
    } catch (e) {
      // An error raised below a statement is reported on that statement's line.
      if (e instanceof PyError && e.line === 0 && "line" in s) throw new PyError(e.type, e.message, s.line);
      throw e;
    }
  }

  private lookup(name: string): Value {
    const v = this.globals.get(name) ?? this.builtins[name];
    if (v !== undefined) return v;
    if (MISSING_BUILTINS.has(name)) throw unsupported(`the builtin '${name}'`);
    throw new PyError("NameError", `name '${name}' is not defined`);
  }

  private async eval(x: Expr, cell: Cell): Promise<Value> {
    switch (x.k) {
      case "int":
      case "float":
      case "str":
      case "const":
        return x.v;
      case "name":
        return this.lookup(x.v);
      case "unary": {
        const v = await this.eval(x.x, cell);
        if (x.op === "not") return !truthy(v);
        if (!isNum(v)) throw unsupported(`unary ${x.op} on a ${typeName(v)}`);
        if (x.op === "+") return typeof v === "boolean" ? toInt(v) : v;
        return typeof v === "number" ? -v : -toInt(v);
      }
      case "binary": {
        const a = await this.eval(x.a, cell);
        if (x.op === "and") return truthy(a) ? this.eval(x.b, cell) : a;
        if (x.op === "or") return truthy(a) ? a : this.eval(x.b, cell);
        const b = await this.eval(x.b, cell);
        return ["==", "!=", "<", ">", "<=", ">="].includes(x.op) ? compare(x.op, a, b) : arithmetic(x.op, a, b);
      }
      case "attr":
        return this.attribute(await this.eval(x.x, cell), x.name);
      case "call": {
        let fn = await this.eval(x.fn, cell);
        if (fn === this.builtins.print) fn = { t: "function", name: "print", call: cell.print };
        if (fn === this.time.attrs.sleep) fn = { t: "function", name: "sleep", call: cell.sleep };
        if (typeof fn !== "object" || fn === null || fn.t !== "function") {
          throw new PyError("TypeError", `'${typeName(fn)}' object is not callable`);
        }
        const args: Value[] = [];
        for (const a of x.args) args.push(await this.eval(a, cell));
        const kwargs: Record<string, Value> = {};
        for (const [k, v] of Object.entries(x.kwargs)) kwargs[k] = await this.eval(v, cell);
        return fn.call(args, kwargs);
      }
    }
  }

  private attribute(v: Value, name: string): Value {
    const method = (call: PyFunction["call"]): PyFunction => ({ t: "function", name, call });
    if (typeof v === "object" && v?.t === "module" && v.attrs[name]) return v.attrs[name];
    if (typeof v === "object" && v?.t === "file" && ["read", "write", "close"].includes(name)) {
      return method((args) => this.fileMethod(v, name, args));
    }
    if (typeof v === "string" && name in STR_METHODS) {
      return method((args) => {
        if (args.length > 0) throw unsupported(`str.${name}() with arguments`);
        return STR_METHODS[name]!(v);
      });
    }
    throw unsupported(`the attribute '${name}' of a ${typeName(v)}`);
  }

  private async open(path: Value, mode: Value): Promise<PyFile> {
    if (typeof mode !== "string" || !/^[rwa]t?$/.test(mode)) throw unsupported(`open() in mode ${repr(mode)}`);
    const rel = workspacePath(path);
    const file: PyFile = { t: "file", path: path as string, mode, text: "", closed: false };
    if (mode.startsWith("r")) file.text = await this.host.readText(rel, file.path);
    else if (mode.startsWith("a")) file.text = await this.host.readText(rel, file.path).catch(() => "");
    if (!mode.startsWith("r")) await this.host.writeText(rel, file.text, file.path);
    return file;
  }

  private async fileMethod(f: PyFile, name: string, args: Value[]): Promise<Value> {
    if (f.closed && name !== "close") throw new PyError("ValueError", "I/O operation on closed file.");
    if (name === "close") {
      f.closed = true;
      return null;
    }
    if (name === "read") {
      if (args.length > 0) throw unsupported("read() with a size");
      if (!f.mode.startsWith("r")) throw new PyError("io.UnsupportedOperation", "not readable");
      const text = f.text;
      f.text = "";
      return text;
    }
    if (f.mode.startsWith("r")) throw new PyError("io.UnsupportedOperation", "not writable");
    const s = args[0] ?? null;
    if (typeof s !== "string") throw new PyError("TypeError", `write() argument must be str, not ${typeName(s)}`);
    f.text += s;
    // Written through at once: the fake has no buffer for a crash to lose.
    await this.host.writeText(workspacePath(f.path), f.text, f.path);
    return BigInt([...s].length);
  }
}

const STR_METHODS: Record<string, (s: string) => Value> = {
  upper: (s) => s.toUpperCase(),
  lower: (s) => s.toLowerCase(),
  strip: (s) => s.trim(),
};
