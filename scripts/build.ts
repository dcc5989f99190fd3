/**
 * `bun run build [--outfile dist/bay] [--target bun-linux-x64]`
 *
 * Compiles Bay's command (src/bay/cli.ts: `bay serve`, the default, and every
 * other command) into one self-contained executable with
 * `Bun.build({ compile })`. Run it like `bun run src/bay/main.ts`: same
 * environment variables, same BAY_CONFIG file.
 *
 * Ship comes along: Ship is compiled first (for the same target) and gzipped,
 * and the `embedded-ship` plugin below replaces src/bay/images/embedded.ts, in
 * the bundle only, with a module that embeds that executable, the Dockerfile
 * and their sources digest, so `dist/bay images build` needs no checkout.
 *
 * Why the plugin: `@libsql/client` opens local databases through the `libsql`
 * package, whose index.js picks its native addon at run time with
 *
 *     return require(`@libsql/${target}`);
 *
 * The bundler cannot resolve a computed specifier, so it leaves the require in
 * place, embeds no addon, and the binary dies at start with
 * `Cannot find module '@libsql/linux-x64-gnu'`. The `libsql-static-require`
 * plugin below rewrites that one expression, in the loaded source only (never
 * in node_modules), into `require("@libsql/<package for the build target>")`,
 * which the bundler follows and whose `index.node` it embeds in the binary.
 * When libsql's source no longer contains the expression the build fails
 * instead of silently producing a broken binary.
 *
 * dockerode requires ssh2 (for ssh:// engines) and gRPC (for BuildKit
 * sessions) at its top level; Bay uses neither. At run time
 * src/bay/drivers/docker/dockerode.ts installs stand-ins for them before
 * loading dockerode; a Bun plugin of the bundler cannot be installed that way,
 * so the `unused-dependencies` plugin below resolves the same module names to
 * the same stand-ins, and neither ends up in the binary nor in its memory.
 * Other dependencies need nothing: hono, yaml and zod are plain ESM. Files Bay serves are text imports (`with { type: "text" }`)
 * that the bundler embeds as they are: openapi/bay.v1.yaml (src/bay/api/generated/spec.ts)
 * and swagger-ui-dist's bundle and stylesheet (src/bay/api/routes/docs.ts);
 * tests/e2e/binary.test.ts checks the binary serves them byte for byte.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import type { BunPlugin } from "bun";
import { UNUSED_DEPENDENCIES } from "../src/bay/drivers/docker/unused-dependencies.ts";
import { NO_AUTOLOAD, shipSourcesDigest } from "../src/bay/images/ship-source.ts";

const ROOT = join(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/bay/cli.ts");

/** Bun compile target (without the SIMD suffix) → libsql's prebuilt addon package. */
const LIBSQL_PACKAGES: Record<string, string> = {
  "linux-x64-glibc": "@libsql/linux-x64-gnu",
  "linux-x64-musl": "@libsql/linux-x64-musl",
  "linux-arm64-glibc": "@libsql/linux-arm64-gnu",
  "linux-arm64-musl": "@libsql/linux-arm64-musl",
  "darwin-x64": "@libsql/darwin-x64",
  "darwin-arm64": "@libsql/darwin-arm64",
  "windows-x64": "@libsql/win32-x64-msvc",
};

/** The computed require in node_modules/libsql/{index,promise}.js (libsql 0.5.x). */
const COMPUTED_REQUIRE = /require\(\s*`@libsql\/\$\{target\}`\s*\)/g;

/** Which libsql addon package a compile target needs; the current host when `target` is undefined. */
export function libsqlPackageFor(target?: string): string {
  let key: string;
  if (target) {
    // bun-linux-x64[-baseline|-modern][-musl] → linux-x64-glibc|musl
    const m = /^bun-(linux|darwin|windows)-(x64|arm64)(?:-(?:baseline|modern))?(?:-(musl))?$/.exec(target);
    if (!m) throw new Error(`unsupported --target ${target} (expected e.g. bun-linux-x64, bun-linux-arm64-musl, bun-darwin-arm64)`);
    const [, os, arch, musl] = m;
    key = os === "linux" ? `linux-${arch}-${musl ? "musl" : "glibc"}` : `${os}-${arch}`;
  } else {
    const os = process.platform === "win32" ? "windows" : process.platform;
    if (os === "linux") {
      const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
      key = `linux-${process.arch}-${report?.header?.glibcVersionRuntime ? "glibc" : "musl"}`;
    } else key = `${os}-${process.arch}`;
  }
  const pkg = LIBSQL_PACKAGES[key];
  if (!pkg) throw new Error(`no libsql addon package known for ${key}`);
  return pkg;
}

/** Rewrites libsql's computed native-addon require into a static one (see the file comment). */
export function libsqlStaticRequire(pkg: string): BunPlugin {
  return {
    name: "libsql-static-require",
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]libsql[\\/](index|promise)\.js$/ }, async ({ path }) => {
        const source = await Bun.file(path).text();
        const patched = source.replace(COMPUTED_REQUIRE, `require(${JSON.stringify(pkg)})`);
        if (patched === source) {
          throw new Error(`${path}: computed require(\`@libsql/\${target}\`) not found; update scripts/build.ts for this libsql version`);
        }
        return { contents: patched, loader: "js" };
      });
    },
  };
}

/** Resolves each module of UNUSED_DEPENDENCIES to its stand-in (see the file comment). */
export function unusedDependencies(): BunPlugin {
  const names = Object.keys(UNUSED_DEPENDENCIES);
  const stubs = join(ROOT, "src/bay/drivers/docker/unused-dependencies.ts");
  const namespace = "bay-unused-dependency";
  const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  return {
    name: "unused-dependencies",
    setup(build) {
      build.onResolve({ filter: new RegExp(`^(${names.map(literal).join("|")})$`) }, ({ path }) => ({ path, namespace }));
      build.onLoad({ filter: /.*/, namespace }, ({ path }) => ({
        contents: `module.exports = require(${JSON.stringify(stubs)}).UNUSED_DEPENDENCIES[${JSON.stringify(path)}];`,
        loader: "js",
      }));
    },
  };
}

/** What the embedded-ship plugin puts in the binary. */
export interface ShipPayload {
  /** The gzipped Ship executable on disk (embedded by the bundler). */
  shipGzPath: string;
  dockerfile: string;
  sourcesDigest: string;
  bunVersion: string;
}

/** Compiles Ship for `target` into `dir`, gzipped, with what identifies its inputs. */
export async function compileShipPayload(dir: string, target?: string): Promise<ShipPayload> {
  const ship = join(dir, "ship");
  const result = await Bun.build({
    entrypoints: [join(ROOT, "src/ship/main.ts")],
    compile: { outfile: ship, ...NO_AUTOLOAD, ...(target ? { target: target as Bun.Build.CompileTarget } : {}) },
    minify: true,
    throw: false,
  });
  if (!result.success) throw new Error(`bun build of Ship failed:\n${result.logs.map((l) => `  ${String(l)}`).join("\n")}`);
  const shipGzPath = join(dir, "ship.gz");
  writeFileSync(shipGzPath, Bun.gzipSync(readFileSync(ship), { level: 6 }));
  return {
    shipGzPath,
    dockerfile: readFileSync(join(ROOT, "src/ship/Dockerfile"), "utf8"),
    sourcesDigest: await shipSourcesDigest(ROOT),
    bunVersion: Bun.version,
  };
}

/** Replaces src/bay/images/embedded.ts with the payload (see the file comment). */
export function embeddedShip(payload: ShipPayload, onUsed: () => void = () => {}): BunPlugin {
  const { shipGzPath, ...rest } = payload;
  return {
    name: "embedded-ship",
    setup(build) {
      build.onLoad(
        { filter: /[\\/]src[\\/]bay[\\/]images[\\/]embedded\.ts$/ },
        () => (
          onUsed(),
          {
            contents: [
              `import shipGzPath from ${JSON.stringify(shipGzPath)} with { type: "file" };`,
              `export const EMBEDDED_SHIP = { shipGzPath, ...${JSON.stringify(rest)} };`,
            ].join("\n"),
            loader: "ts",
          }
        ),
      );
    },
  };
}

export interface BuildResult {
  outfile: string;
  bytes: number;
  libsqlPackage: string;
  ms: number;
}

/** Compiles Bay into `outfile`. Throws with the bundler's messages on failure. */
export async function buildBinary(opts: { outfile?: string; target?: string } = {}): Promise<BuildResult> {
  const started = performance.now();
  const outfile = opts.outfile ?? join(ROOT, "dist/bay");
  const pkg = libsqlPackageFor(opts.target);
  if (!existsSync(join(ROOT, "node_modules", pkg))) {
    throw new Error(
      `${pkg} is not in node_modules; it holds libsql's native addon for this target. ` +
        `Install it at the libsql version in bun.lock (or run \`bun install\` on that platform), then build again.`,
    );
  }
  const work = mkdtempSync(join(tmpdir(), "bay-build-"));
  let embedded = false;
  let result: Awaited<ReturnType<typeof Bun.build>>;
  try {
    const payload = await compileShipPayload(work, opts.target);
    result = await Bun.build({
      entrypoints: [ENTRY],
      // Bay's config comes from bay.yaml and the environment, never from a bunfig.toml or .env where it is started.
      compile: { outfile, ...NO_AUTOLOAD, ...(opts.target ? { target: opts.target as Bun.Build.CompileTarget } : {}) },
      minify: true,
      // Embedded in the executable, so stack traces name src/ files and lines.
      sourcemap: "linked",
      plugins: [libsqlStaticRequire(pkg), unusedDependencies(), embeddedShip(payload, () => (embedded = true))],
      throw: false,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!result.success) {
    throw new Error(`bun build failed:\n${result.logs.map((l) => `  ${String(l)}`).join("\n")}`);
  }
  // A binary without Ship would build no images: never ship one silently.
  if (!embedded) throw new Error("src/bay/images/embedded.ts was not bundled; update the embedded-ship plugin in scripts/build.ts");
  for (const log of result.logs) console.warn(String(log));
  // The bundler also writes <outfile>.map; the binary does not need it (its copy is embedded).
  rmSync(`${outfile}.map`, { force: true });
  return { outfile, bytes: statSync(outfile).size, libsqlPackage: pkg, ms: performance.now() - started };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      outfile: { type: "string" },
      target: { type: "string" },
    },
  });
  try {
    const r = await buildBinary({ outfile: values.outfile, target: values.target });
    const mib = (r.bytes / 1024 / 1024).toFixed(1);
    console.log(
      `built ${relative(process.cwd(), r.outfile) || r.outfile} (${mib} MiB, libsql addon ${r.libsqlPackage}) in ${(r.ms / 1000).toFixed(1)}s`,
    );
  } catch (e) {
    console.error(`[build] ${(e as Error).message}`);
    process.exit(1);
  }
}
