/**
 * `bun run gen` writes src/bay/api/generated/, the E2B routes' code (openapi/e2b.v1.yaml,
 * proto/envd/) and the TypeScript client's types
 * (clients/typescript/src/schema.ts) and the Python client's operations
 * (clients/python/bay_client/_operations.py) from openapi/bay.v1.yaml.
 * `bun run gen:check` regenerates in memory and exits 1 if the committed files differ.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { CLIENT_SCHEMA_PATH, generateClientSchema } from "./gen/client.ts";
import { generate, SPEC_PATH, TARGETS } from "./gen/generate.ts";
import { generateProto, PROTO_OUT_DIR } from "./gen/proto.ts";
import { generatePythonOperations, PYTHON_OPERATIONS_PATH } from "./gen/python-client.ts";

const root = join(import.meta.dir, "..");
const check = process.argv.includes("--check");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const files = new Map<string, string>();
const onDisk: string[] = [];
for (const target of TARGETS) {
  const text = readFileSync(join(root, target.specPath), "utf8");
  // Bay's contract carries the package version; Ship's protocol has its own (v1).
  for (const [path, body] of generate(text, target.embedSpec ? { version } : {}, target)) files.set(path, body);
  if (!existsSync(join(root, target.outDir))) continue;
  for (const e of readdirSync(join(root, target.outDir), { recursive: true, withFileTypes: true })) {
    if (e.isFile()) onDisk.push(relative(root, join(e.parentPath, e.name)));
  }
}
files.set(CLIENT_SCHEMA_PATH, await generateClientSchema(readFileSync(join(root, SPEC_PATH), "utf8")));
files.set(PYTHON_OPERATIONS_PATH, generatePythonOperations(readFileSync(join(root, SPEC_PATH), "utf8")));
for (const [path, body] of generateProto(root)) files.set(path, body);
if (existsSync(join(root, PROTO_OUT_DIR))) {
  for (const e of readdirSync(join(root, PROTO_OUT_DIR), { recursive: true, withFileTypes: true })) {
    if (e.isFile()) onDisk.push(relative(root, join(e.parentPath, e.name)));
  }
}
const OUT_DIR = [...TARGETS.map((t) => t.outDir), PROTO_OUT_DIR].join(", ");

if (check) {
  const problems: string[] = [];
  for (const [path, text] of files) {
    const full = join(root, path);
    if (!existsSync(full)) {
      problems.push(`missing: ${path}`);
      continue;
    }
    const old = readFileSync(full, "utf8");
    if (old === text) continue;
    const a = old.split("\n");
    const b = text.split("\n");
    const line = a.findIndex((l, i) => l !== b[i]);
    const at = line === -1 ? a.length : line;
    problems.push(
      `stale: ${path} (first difference at line ${at + 1}: on disk ${JSON.stringify(a[at] ?? "<eof>")}, generated ${JSON.stringify(b[at] ?? "<eof>")})`,
    );
  }
  for (const path of onDisk) if (!files.has(path)) problems.push(`unexpected: ${path}`);
  if (problems.length > 0) {
    console.error(
      `generated files are out of date with ${TARGETS.map((t) => t.specPath).join(" and ")}; run \`bun run gen\`:\n  ${problems.join("\n  ")}`,
    );
    process.exit(1);
  }
  console.log(`${files.size} generated files are up to date`);
} else {
  for (const path of onDisk) if (!files.has(path)) rmSync(join(root, path));
  for (const [path, text] of files) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  console.log(`wrote ${files.size} files to ${OUT_DIR}, ${CLIENT_SCHEMA_PATH} and ${PYTHON_OPERATIONS_PATH}`);
}
