/**
 * The envd services Bay answers on its E2B routes are defined in proto/envd/
 * (our own .proto files); `buf generate` with protoc-gen-es (both from npm, run
 * from node_modules) writes their TypeScript. Generated into a temporary
 * directory so that `gen:check` can compare without touching the tree.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

export const PROTO_OUT_DIR = "src/bay/e2b/generated/envd";

/** Generated files keyed by path relative to the repository root. */
export function generateProto(root: string): Map<string, string> {
  const out = mkdtempSync(join(tmpdir(), "bay-proto-"));
  try {
    const bin = join(root, "node_modules", ".bin");
    const template = JSON.stringify({
      version: "v2",
      plugins: [{ local: join(bin, "protoc-gen-es"), out, opt: ["target=ts", "import_extension=ts"] }],
    });
    const run = Bun.spawnSync([join(bin, "buf"), "generate", "--template", template, join(root, "proto")], {
      cwd: root,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
      stderr: "pipe",
    });
    if (run.exitCode !== 0) throw new Error(`buf generate failed: ${run.stderr.toString()}`);
    const files = new Map<string, string>();
    for (const e of readdirSync(join(out, "envd"), { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const full = join(e.parentPath, e.name);
      files.set(join(PROTO_OUT_DIR, relative(join(out, "envd"), full)), readFileSync(full, "utf8"));
    }
    return files;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
