/**
 * Turns one REPL cell into a classic script, the way Node's REPL rewrites top-level
 * `await` code: parsed with acorn, then edited in place at node positions so line N of
 * a JavaScript cell stays line N of the script (stack traces point at the user's lines).
 *
 * The script's completion value is a promise of the cell's boxed value (cellValue). Inside it:
 * - top-level `const`/`let`/`var`/`class`/`function` and `var`s in nested blocks become
 *   global properties (declared with a `var` outside the async wrapper), so they persist
 *   across cells and a later cell may declare the same name again, as REPLs allow;
 * - `import … from "x"` and `import("x")` go through `__bay__.import`, which resolves from
 *   the kernel's working directory; `import.meta` is `__bay__.meta`;
 * - a top-level `await x` becomes `await __bay__.hop(x)`, so the rest of the cell resumes
 *   inside the kernel's interruptible section (see kernel.ts);
 * - the last top-level expression statement is returned in a box with no prototype
 *   (`{ value }`): it is the cell's value. Returned bare, a value that is a thenable
 *   (an array once a cell set `Array.prototype.then`) would be adopted by the async
 *   wrapper through its `then`, which may never call back; cellValue unboxes it.
 * Cells that acorn cannot parse are retried as TypeScript through `transpile` (Bun's
 * transpiler), whose output is reprinted code: line numbers are then approximate.
 */
import { parse, type Options } from "acorn";

/** Name of the kernel's helper object in generated code (a non-writable global). */
export const HELPER = "__bay__";

/** What a cell becomes. */
export interface TransformedCell {
  /** Source of a classic script; its completion value is a promise of the cell's boxed value (cellValue). */
  source: string;
  /** Names the cell declares at top level (they become globals). */
  declared: string[];
  /** True when the cell only parsed as TypeScript and was transpiled first. */
  transpiled: boolean;
}

/** A cell that is not valid JavaScript (nor TypeScript). */
export class CellSyntaxError extends SyntaxError {
  override name = "SyntaxError";
}

interface Node {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

const PARSE_OPTIONS: Options = {
  ecmaVersion: "latest",
  sourceType: "script",
  allowAwaitOutsideFunction: true,
  allowImportExportEverywhere: true,
};

const FUNCTION_SCOPES = new Set([
  "FunctionDeclaration",
  "FunctionExpression",
  "ArrowFunctionExpression",
  "StaticBlock",
  "PropertyDefinition",
]);

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && typeof (value as Node).type === "string";
}

/** Binding names of a declaration pattern (`a`, `{a, b: [c]}`, `...rest`). */
function bindingNames(pattern: Node | null, out: Set<string>): void {
  if (!pattern) return;
  switch (pattern.type) {
    case "Identifier":
      out.add(pattern.name as string);
      break;
    case "ObjectPattern":
      for (const prop of pattern.properties as Node[]) bindingNames(prop.type === "RestElement" ? prop : (prop.value as Node), out);
      break;
    case "ArrayPattern":
      for (const element of pattern.elements as Array<Node | null>) bindingNames(element, out);
      break;
    case "AssignmentPattern":
      bindingNames(pattern.left as Node, out);
      break;
    case "RestElement":
      bindingNames(pattern.argument as Node, out);
      break;
  }
}

interface Edit {
  start: number;
  end: number;
  text: string;
  rank: number;
  seq: number;
}

/** Text edits at node positions, applied in one pass. */
class Editor {
  private readonly edits: Edit[] = [];

  /** Inserts an opening text; outer (shallower) openers come first at one position. */
  open(pos: number, text: string, depth: number): void {
    this.push(pos, pos, text, depth);
  }

  /** Inserts a closing text; closers come before openers, inner (deeper) ones first. */
  close(pos: number, text: string, depth: number): void {
    this.push(pos, pos, text, -depth - 1);
  }

  replace(start: number, end: number, text: string, depth: number): void {
    this.push(start, end, text, depth + 0.5);
  }

  apply(source: string): string {
    const sorted = [...this.edits].sort((a, b) => a.start - b.start || a.rank - b.rank || a.seq - b.seq);
    let out = "";
    let cursor = 0;
    for (const edit of sorted) {
      if (edit.start < cursor) throw new Error(`overlapping cell edits at ${edit.start}`);
      out += source.slice(cursor, edit.start) + edit.text;
      cursor = edit.end;
    }
    return out + source.slice(cursor);
  }

  private push(start: number, end: number, text: string, rank: number): void {
    this.edits.push({ start, end, text, rank, seq: this.edits.length });
  }
}

function newlinesIn(text: string): string {
  return "\n".repeat(text.split("\n").length - 1);
}

/** `{a: 1}` alone is an object, not a block, as in Node's REPL. */
function asObjectLiteral(code: string): string | null {
  if (!/^\s*\{/.test(code) || !/\}\s*;?\s*$/.test(code)) return null;
  const wrapped = `(${code.replace(/;\s*$/, "")}\n)`;
  try {
    const program = parse(wrapped, PARSE_OPTIONS) as unknown as Node;
    const body = program.body as Node[];
    return body.length === 1 && body[0]?.type === "ExpressionStatement" ? wrapped : null;
  } catch {
    return null;
  }
}

function syntaxError(err: unknown, source: string): CellSyntaxError {
  const e = err as { message?: string; pos?: number; loc?: { line: number; column: number } };
  let text = e.message ?? String(err);
  if (e.loc) {
    const line = source.split("\n")[e.loc.line - 1] ?? "";
    text += `\n    ${line}\n    ${" ".repeat(e.loc.column)}^`;
  }
  return new CellSyntaxError(text);
}

/** Bun's transpiler throws a BuildMessage with `position: {line, column, lineText}` (1-based). */
function transpileError(err: unknown): CellSyntaxError {
  const e = err as { message?: string; position?: { line: number; column: number; lineText: string } | null };
  let text = e.message ?? String(err);
  const pos = e.position;
  if (pos) text += ` (${pos.line}:${pos.column})\n    ${pos.lineText}\n    ${" ".repeat(Math.max(pos.column - 1, 0))}^`;
  return new CellSyntaxError(text);
}

/**
 * Rewrites a cell (JavaScript, or TypeScript through `transpile`) into a script.
 * Throws CellSyntaxError when it is neither.
 */
export function transformCell(code: string, transpile: (ts: string) => string): TransformedCell {
  let source = code.startsWith("#!") ? `//${code.slice(2)}` : code;
  source = asObjectLiteral(source) ?? source;
  let program: Node;
  let transpiled = false;
  try {
    program = parse(source, PARSE_OPTIONS) as unknown as Node;
  } catch {
    let js: string;
    try {
      js = transpile(source);
    } catch (tsError) {
      // Report the TypeScript parser's view: it knows type syntax, acorn stops at the first annotation.
      throw transpileError(tsError);
    }
    try {
      program = parse(js, PARSE_OPTIONS) as unknown as Node;
    } catch (err) {
      throw syntaxError(err, js);
    }
    source = js;
    transpiled = true;
  }
  return rewrite(program, source, transpiled);
}

function rewrite(program: Node, source: string, transpiled: boolean): TransformedCell {
  const ed = new Editor();
  const hoisted = new Set<string>();
  const functions: string[] = [];
  const handled = new Set<Node>();

  /** `var|let|const a = 1, {b} = o` as a statement → `void (a = 1, {b} = o);`. */
  const declarationStatement = (decl: Node, depth: number) => {
    handled.add(decl);
    const declarators = decl.declarations as Node[];
    for (const d of declarators) bindingNames(d.id as Node, hoisted);
    ed.replace(decl.start, declarators[0]!.start, "void (", depth);
    for (const d of declarators) {
      // A REPL `let x` declares x afresh; `var x` keeps its value.
      if (!d.init && decl.kind !== "var") ed.close(d.end, " = void 0", depth + 1);
    }
    ed.close(declarators.at(-1)!.end, source[decl.end - 1] === ";" ? ")" : ");", depth);
  };

  /** `for (var i = 0; …)`, `for (var k in o)` → `for (i = 0; …)`, `for (k in o)`. */
  const declarationHead = (decl: Node, depth: number) => {
    handled.add(decl);
    for (const d of decl.declarations as Node[]) bindingNames(d.id as Node, hoisted);
    ed.replace(decl.start, (decl.declarations as Node[])[0]!.start, "", depth);
  };

  const importDeclaration = (node: Node) => {
    const spec = JSON.stringify((node.source as Node).value);
    const attributes = (node.attributes as Node[] | undefined) ?? [];
    const withClause = attributes.length
      ? `, { with: { ${attributes
          .map((a) => {
            const key = a.key as Node;
            return `${JSON.stringify(key.type === "Identifier" ? key.name : key.value)}: ${JSON.stringify((a.value as Node).value)}`;
          })
          .join(", ")} } }`
      : "";
    const load = `await ${HELPER}.import(${spec}${withClause})`;
    const specifiers = node.specifiers as Node[];
    let text: string;
    if (specifiers.length === 0) {
      text = `${load};`;
    } else {
      const parts: string[] = [];
      let namespace: string | null = null;
      let defaultName: string | null = null;
      for (const s of specifiers) {
        const local = (s.local as Node).name as string;
        hoisted.add(local);
        if (s.type === "ImportNamespaceSpecifier") namespace = local;
        else if (s.type === "ImportDefaultSpecifier") defaultName = local;
        else {
          const imported = s.imported as Node;
          parts.push(`${JSON.stringify(imported.type === "Identifier" ? imported.name : imported.value)}: ${local}`);
        }
      }
      if (namespace) text = `void (${namespace} = ${load}${defaultName ? `, ${defaultName} = ${namespace}.default` : ""});`;
      else {
        if (defaultName) parts.unshift(`default: ${defaultName}`);
        text = `void ({ ${parts.join(", ")} } = ${load});`;
      }
    }
    ed.replace(node.start, node.end, text + newlinesIn(source.slice(node.start, node.end)), 0);
    handled.add(node);
  };

  const topLevel = (stmt: Node, isLast: boolean) => {
    switch (stmt.type) {
      case "VariableDeclaration":
        if (stmt.kind === "var" || stmt.kind === "let" || stmt.kind === "const") declarationStatement(stmt, 0);
        break;
      case "FunctionDeclaration": {
        const name = (stmt.id as Node).name as string;
        hoisted.add(name);
        functions.push(name);
        break;
      }
      case "ClassDeclaration": {
        const name = (stmt.id as Node).name as string;
        hoisted.add(name);
        ed.open(stmt.start, `void (${name} = `, 0);
        ed.close(stmt.end, ");", 0);
        break;
      }
      case "ImportDeclaration":
        importDeclaration(stmt);
        break;
      case "ExportNamedDeclaration": {
        const decl = stmt.declaration as Node | null;
        if (!decl || stmt.source) throw new CellSyntaxError("export lists are not supported in a cell; declare the names instead");
        ed.replace(stmt.start, decl.start, "", 0);
        topLevel(decl, false);
        break;
      }
      case "ExportDefaultDeclaration": {
        const decl = stmt.declaration as Node;
        if ((decl.type === "FunctionDeclaration" || decl.type === "ClassDeclaration") && decl.id) {
          ed.replace(stmt.start, decl.start, "", 0);
          topLevel(decl, false);
        } else {
          ed.replace(stmt.start, decl.start, "void (", 0);
          ed.close(decl.end, ");", 0);
        }
        break;
      }
      case "ExportAllDeclaration":
        throw new CellSyntaxError("export * is not supported in a cell");
      case "ExpressionStatement":
        // A lone string literal parses as a directive; as a REPL's last line it is a value.
        if (isLast) {
          // The statement, not the expression: `({a: 1}\n)` keeps its parentheses inside.
          const end = source[stmt.end - 1] === ";" ? stmt.end - 1 : stmt.end;
          // `(0, …)`: a bare value of the box's property would name an anonymous function or class `value`.
          ed.open(stmt.start, "return { __proto__: null, value: (0, ", 0);
          ed.close(end, ") }", 0);
        }
        break;
    }
  };

  const visit = (node: Node, parent: Node | null, key: string, depth: number, inFunction: boolean) => {
    switch (node.type) {
      case "ImportExpression":
        ed.replace(node.start, node.start + "import".length, `${HELPER}.import`, depth);
        break;
      case "MetaProperty":
        if ((node.meta as Node).name === "import") {
          ed.replace(node.start, node.end, `${HELPER}.meta`, depth);
          return;
        }
        break;
      case "AwaitExpression":
        if (!inFunction) {
          const arg = node.argument as Node;
          ed.open(arg.start, `${HELPER}.hop(`, depth + 1);
          ed.close(arg.end, ")", depth + 1);
        }
        break;
      case "VariableDeclaration":
        if (node.kind === "var" && !inFunction && !handled.has(node)) {
          const inHead =
            parent &&
            ((parent.type === "ForStatement" && key === "init") ||
              ((parent.type === "ForInStatement" || parent.type === "ForOfStatement") && key === "left"));
          if (inHead) declarationHead(node, depth);
          else declarationStatement(node, depth);
        }
        break;
    }
    if (handled.has(node) && node.type === "ImportDeclaration") return;
    const scope = inFunction || FUNCTION_SCOPES.has(node.type);
    for (const k of Object.keys(node)) {
      const value = node[k];
      const children = Array.isArray(value) ? value.filter(isNode) : isNode(value) ? [value] : [];
      for (const child of children) visit(child, node, k, depth + 1, scope);
    }
  };

  const body = program.body as Node[];
  for (const [i, stmt] of body.entries()) topLevel(stmt, i === body.length - 1);
  for (const stmt of body) visit(stmt, program, "body", 1, false);

  const edited = ed.apply(source);
  const declared = [...hoisted];
  const prefix =
    (declared.length ? `var ${declared.join(", ")}; ` : "") +
    "(async () => { " +
    functions.map((name) => `${HELPER}.g.${name} = ${name}; `).join("");
  return { source: `${prefix}${edited}\n})()`, declared, transpiled };
}
