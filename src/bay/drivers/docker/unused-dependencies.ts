/**
 * Stand-ins for the parts of dockerode Bay can never use, so they are neither
 * loaded nor kept resident (about 12 MiB of Bay's idle RSS).
 *
 * dockerode and docker-modem are CommonJS and require at their top level:
 *
 * - `ssh2` (docker-modem's lib/ssh.js) for `ssh://` engines. Bay reaches Docker
 *   only over a unix socket or plain tcp: connectionOptions (connect-mode.ts)
 *   rejects any other scheme and always sets `protocol`, so docker-modem never
 *   takes its ssh branch.
 * - `@grpc/grpc-js` and `@grpc/proto-loader` (dockerode's lib/session.js) for
 *   BuildKit sessions, opened only by `buildImage` with `version: "2"`. Bay's one
 *   build (images/image-builder.ts) uses the classic builder.
 * - `tar-fs` and `@balena/dockerignore` (dockerode's lib/util.js) to pack a
 *   build context from a directory (`buildImage({context, src})`). Bay's one
 *   build hands the engine a tar stream it packs itself (tar-stream), which
 *   dockerode passes through untouched (about 0.6 MiB of idle RSS).
 *
 * The stand-ins load nothing and fail with a clear message if they are ever
 * reached. They are installed at run time by ./dockerode.ts (a Bun plugin) and
 * in the compiled binary by scripts/build.ts (a bundler plugin), both from
 * {@link UNUSED_DEPENDENCIES}.
 */

/** Thrown when a stubbed-out dependency of dockerode is used after all. */
export class UnusedDependencyError extends Error {
  constructor(dependency: string, feature: string) {
    super(
      `${dependency} is not part of Bay: dockerode's ${feature} is stubbed out ` +
        "(Bay talks to Docker over unix:// or tcp:// with the classic image builder; see src/bay/drivers/docker/unused-dependencies.ts)",
    );
    this.name = "UnusedDependencyError";
  }
}

const fail = (dependency: string, feature: string) => () => {
  throw new UnusedDependencyError(dependency, feature);
};

/** A class whose construction fails like {@link fail}. */
function failingClass(dependency: string, feature: string): new () => never {
  return class {
    constructor() {
      throw new UnusedDependencyError(dependency, feature);
    }
  } as unknown as new () => never;
}

const SSH = "ssh:// transport";
const BUILDKIT = "BuildKit session (buildImage with version 2)";
const CONTEXT_DIR = "build context from a directory (buildImage with context)";

/**
 * Module name → the exports that stand in for it: every member the dependents
 * touch, each failing when called or constructed (requiring the module itself
 * must still succeed, since it happens when dockerode loads). A module whose
 * export is itself a function stands in as a failing function.
 */
export const UNUSED_DEPENDENCIES: Readonly<Record<string, unknown>> = {
  ssh2: { Client: failingClass("ssh2", SSH) },
  "@grpc/grpc-js": {
    Server: failingClass("@grpc/grpc-js", BUILDKIT),
    ServerCredentials: { createInsecure: fail("@grpc/grpc-js", BUILDKIT) },
    loadPackageDefinition: fail("@grpc/grpc-js", BUILDKIT),
  },
  "@grpc/proto-loader": {
    loadSync: fail("@grpc/proto-loader", BUILDKIT),
    load: fail("@grpc/proto-loader", BUILDKIT),
  },
  "tar-fs": { pack: fail("tar-fs", CONTEXT_DIR), extract: fail("tar-fs", CONTEXT_DIR) },
  "@balena/dockerignore": fail("@balena/dockerignore", CONTEXT_DIR),
};

let installed = false;

/**
 * Makes `require`/`import` of each {@link UNUSED_DEPENDENCIES} module answer its
 * stand-in in this process (a Bun run-time plugin). Must run before dockerode is
 * evaluated; ./dockerode.ts does it. Idempotent.
 */
export function installUnusedDependencyStubs(): void {
  if (installed) return;
  installed = true;
  Bun.plugin({
    name: "bay-unused-dockerode-dependencies",
    setup(build) {
      for (const [name, standIn] of Object.entries(UNUSED_DEPENDENCIES)) {
        // An object module's `require` answers its exports; a function is answered as an ES module's default.
        const exports = typeof standIn === "function" ? { __esModule: true, default: standIn } : (standIn as Record<string, unknown>);
        build.module(name, () => ({ loader: "object", exports }));
      }
    },
  });
}
