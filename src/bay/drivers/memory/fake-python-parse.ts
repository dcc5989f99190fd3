/**
 * The parser of the in-memory fake Ship's "Python": a small subset of the
 * language, enough for lifecycle tests to run cells like `1+1`, `x = 1`, `x + 1`,
 * `print(open('f').read())` or `import time; time.sleep(1)` and read real answers.
 *
 *   cell      := stmt ((NEWLINE | ';') stmt)*
 *   stmt      := 'import' NAME (',' NAME)* | 'pass' | NAME ('=' | '+=' | '-=') expr | expr
 *   expr      := or ; or := and ('or' and)* ; and := not ('and' not)* ; not := 'not' not | compare
 *   compare   := sum (('=='|'!='|'<'|'>'|'<='|'>=') sum)*
 *   sum       := term (('+'|'-') term)* ; term := unary (('*'|'/'|'//'|'%') unary)*
 *   unary     := ('-'|'+') unary | power ; power := postfix ('**' unary)?
 *   postfix   := atom ('(' args ')' | '.' NAME)*
 *   atom      := INT | FLOAT | STRING+ | NAME | True | False | None | '(' expr ')'
 *
 * Anything else (blocks such as if, for, def, with, try; lists, dicts, subscripts,
 * f-strings, lambdas, `from` imports) answers a NotImplementedError traceback
 * naming the fake, never a wrong result.
 */

/** An exception raised inside the fake kernel, reported as a Python traceback. */
export class PyError extends Error {
  constructor(
    readonly type: string,
    message: string,
    /** 1-based line of the cell; 0 until the statement it was raised in is known. */
    readonly line = 0,
  ) {
    super(message);
  }
}

export type Expr =
  | { k: "int"; v: bigint }
  | { k: "float"; v: number }
  | { k: "str"; v: string }
  | { k: "const"; v: boolean | null }
  | { k: "name"; v: string; line: number }
  | { k: "unary"; op: string; x: Expr; line: number }
  | { k: "binary"; op: string; a: Expr; b: Expr; line: number }
  | { k: "call"; fn: Expr; args: Expr[]; kwargs: Record<string, Expr>; line: number }
  | { k: "attr"; x: Expr; name: string; line: number };

export type Stmt =
  | { k: "import"; names: string[]; line: number }
  | { k: "pass" }
  | { k: "assign"; name: string; op: "=" | "+=" | "-="; x: Expr; line: number }
  | { k: "expr"; x: Expr; line: number };

interface Tok {
  k: "num" | "str" | "name" | "op" | "nl" | "end";
  v: string;
  line: number;
}

const OPS = ["**", "//", "==", "!=", "<=", ">=", "+=", "-=", "+", "-", "*", "/", "%", "<", ">", "=", "(", ")", ",", ".", ";"];
/** Python keywords outside the subset: a cell using one is refused, never run as a name. */
const UNSUPPORTED_KEYWORDS = new Set(
  "if elif else for while break continue def class with try except finally raise return lambda yield del global nonlocal assert async await is in from as".split(
    " ",
  ),
);
/** Refuses what the subset does not cover; Python itself might well run it. */
export const unsupported = (what: string, line = 0) =>
  new PyError("NotImplementedError", `${what} is outside the in-memory fake Ship's Python subset`, line);
const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0" };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  let depth = 0;
  while (i < src.length) {
    const c = src[i]!;
    const rest = src.slice(i);
    if (c === "\n") {
      if (depth === 0) out.push({ k: "nl", v: "\n", line });
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") i++;
    else if (c === "#") while (i < src.length && src[i] !== "\n") i++;
    else if (c === "\\" && src[i + 1] === "\n") {
      i += 2;
      line++;
    } else if (/^[0-9]|^\.[0-9]/.test(rest)) {
      const m = /^(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?/.exec(rest)!;
      out.push({ k: "num", v: m[0], line });
      i += m[0].length;
    } else if (/^[A-Za-z_]/.test(rest)) {
      const m = /^[A-Za-z_]\w*/.exec(rest)!;
      if (src[i + m[0].length] === "'" || src[i + m[0].length] === '"') throw unsupported(`a string with prefix ${m[0]}`, line);
      out.push({ k: "name", v: m[0], line });
      i += m[0].length;
    } else if (c === "'" || c === '"') {
      const quote = rest.startsWith(c.repeat(3)) ? c.repeat(3) : c;
      let j = i + quote.length;
      let text = "";
      for (;;) {
        if (j >= src.length || (quote.length === 1 && src[j] === "\n"))
          throw new PyError("SyntaxError", "unterminated string literal", line);
        if (src.startsWith(quote, j)) break;
        if (src[j] === "\\" && j + 1 < src.length) {
          text += ESCAPES[src[j + 1]!] ?? `\\${src[j + 1]}`;
          j += 2;
          continue;
        }
        if (src[j] === "\n") line++;
        text += src[j];
        j++;
      }
      out.push({ k: "str", v: text, line });
      i = j + quote.length;
    } else {
      const op = OPS.find((o) => rest.startsWith(o));
      if (!op) throw unsupported(`'${c}'`, line);
      if (op === ";") out.push({ k: "nl", v: ";", line });
      else out.push({ k: "op", v: op, line });
      if (op === "(") depth++;
      if (op === ")") depth = Math.max(0, depth - 1);
      i += op.length;
    }
  }
  out.push({ k: "end", v: "", line });
  return out;
}

/** Parses a cell into statements; what the subset cannot parse throws a NotImplementedError PyError. */
export function parseCell(src: string): Stmt[] {
  const toks = tokenize(src);
  let p = 0;
  const peek = (o = 0) => toks[Math.min(p + o, toks.length - 1)]!;
  const isOp = (v: string, o = 0) => peek(o).k === "op" && peek(o).v === v;
  const isName = (v: string) => peek().k === "name" && peek().v === v;
  // Valid Python or not, a cell the subset cannot parse is refused as unsupported, not called a syntax error.
  const fail = (t: Tok): never => {
    throw unsupported(t.k === "end" ? "a cell ending there" : t.k === "nl" ? "that line" : `'${t.v}' there`, t.line);
  };
  const expectOp = (v: string) => {
    if (!isOp(v)) fail(peek());
    p++;
  };

  const atom = (): Expr => {
    const t = peek();
    p++;
    if (t.k === "num") {
      if (/[.eE]/.test(t.v)) return { k: "float", v: Number(t.v) };
      return { k: "int", v: BigInt(t.v) };
    }
    if (t.k === "str") {
      let v = t.v;
      while (peek().k === "str") v += toks[p++]!.v;
      return { k: "str", v };
    }
    if (t.k === "name") {
      if (t.v === "True" || t.v === "False") return { k: "const", v: t.v === "True" };
      if (t.v === "None") return { k: "const", v: null };
      if (UNSUPPORTED_KEYWORDS.has(t.v)) throw unsupported(`'${t.v}'`, t.line);
      return { k: "name", v: t.v, line: t.line };
    }
    if (t.k === "op" && t.v === "(") {
      const x = expr();
      expectOp(")");
      return x;
    }
    return fail(t);
  };

  const postfix = (): Expr => {
    let x = atom();
    for (;;) {
      const line = peek().line;
      if (isOp("(")) {
        p++;
        const args: Expr[] = [];
        const kwargs: Record<string, Expr> = {};
        while (!isOp(")")) {
          if (peek().k === "name" && isOp("=", 1)) {
            const key = peek().v;
            p += 2;
            kwargs[key] = expr();
          } else args.push(expr());
          if (!isOp(")")) expectOp(",");
        }
        p++;
        x = { k: "call", fn: x, args, kwargs, line };
      } else if (isOp(".")) {
        p++;
        if (peek().k !== "name") fail(peek());
        x = { k: "attr", x, name: toks[p++]!.v, line };
      } else return x;
    }
  };

  const binaryLevel = (ops: string[], next: () => Expr) => (): Expr => {
    let a = next();
    while ((peek().k === "op" || peek().k === "name") && ops.includes(peek().v)) {
      const { v: op, line } = toks[p++]!;
      a = { k: "binary", op, a, b: next(), line };
    }
    return a;
  };

  const unary = (): Expr => {
    if (isOp("-") || isOp("+")) {
      const { v: op, line } = toks[p++]!;
      return { k: "unary", op, x: unary(), line };
    }
    const base = postfix();
    if (!isOp("**")) return base;
    const line = toks[p++]!.line;
    return { k: "binary", op: "**", a: base, b: unary(), line };
  };
  const term = binaryLevel(["*", "/", "//", "%"], unary);
  const sum = binaryLevel(["+", "-"], term);
  const COMPARISONS = ["==", "!=", "<", ">", "<=", ">="];
  const compare = (): Expr => {
    const a = sum();
    if (!COMPARISONS.includes(peek().v) || peek().k !== "op") return a;
    const { v: op, line } = toks[p++]!;
    const x: Expr = { k: "binary", op, a, b: sum(), line };
    // Python chains `a < b < c` as `a < b and b < c`; the subset does not.
    if (peek().k === "op" && COMPARISONS.includes(peek().v)) throw unsupported("a chained comparison", line);
    return x;
  };
  const not = (): Expr => {
    if (!isName("not")) return compare();
    const line = toks[p++]!.line;
    return { k: "unary", op: "not", x: not(), line };
  };
  const and = binaryLevel(["and"], not);
  const expr = binaryLevel(["or"], and);

  const stmt = (): Stmt => {
    const t = peek();
    if (t.k === "name" && t.v === "import") {
      p++;
      const names: string[] = [];
      for (;;) {
        if (peek().k !== "name") fail(peek());
        names.push(toks[p++]!.v);
        if (!isOp(",")) break;
        p++;
      }
      return { k: "import", names, line: t.line };
    }
    if (t.k === "name" && t.v === "pass") {
      p++;
      return { k: "pass" };
    }
    if (t.k === "name" && (isOp("=", 1) || isOp("+=", 1) || isOp("-=", 1))) {
      if (UNSUPPORTED_KEYWORDS.has(t.v)) fail(t);
      const op = peek(1).v as "=" | "+=" | "-=";
      p += 2;
      return { k: "assign", name: t.v, op, x: expr(), line: t.line };
    }
    return { k: "expr", x: expr(), line: t.line };
  };

  const stmts: Stmt[] = [];
  for (;;) {
    while (peek().k === "nl") p++;
    if (peek().k === "end") return stmts;
    stmts.push(stmt());
    if (peek().k !== "nl" && peek().k !== "end") fail(peek());
  }
}
