/**
 * dockerode's ssh, BuildKit and context-directory dependencies are replaced by stand-ins
 * (src/bay/drivers/docker/unused-dependencies.ts): loading dockerode through Bay
 * loads none of them, and reaching one anyway fails with a message that names
 * it, instead of some TypeError deep inside dockerode.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connectionOptions } from "../../src/bay/drivers/docker/connect-mode.ts";
import { UNUSED_DEPENDENCIES, UnusedDependencyError } from "../../src/bay/drivers/docker/unused-dependencies.ts";

const ROOT = join(import.meta.dir, "../..");

/**
 * Runs `body` in a fresh Bun (this test process may already hold the real
 * modules, loaded by other test files) after Bay's dockerode is loaded, and
 * returns what it printed as JSON.
 */
async function inFreshBun(body: string): Promise<Record<string, unknown>> {
  const script = `import { Docker } from ${JSON.stringify(join(ROOT, "src/bay/drivers/docker/dockerode.ts"))};\n${body}`;
  const proc = Bun.spawn(["bun", "-e", script], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`bun -e exited ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").at(-1) ?? "null");
}

describe("dockerode's unused dependencies", () => {
  test("loading dockerode through Bay loads neither ssh2, gRPC, tar-fs nor dockerignore, and builds a client", async () => {
    const r = await inFreshBun(`
      const docker = new Docker({ socketPath: "/nonexistent/docker.sock" });
      const loaded = Object.keys(require.cache).filter((k) => /node_modules[\\\\/](ssh2|@grpc|protobufjs|tar-fs|@balena|pump|mkdirp-classic)[\\\\/]/.test(k));
      console.log(JSON.stringify({ loaded, modem: typeof docker.modem.dial }));
    `);
    expect(r).toEqual({ loaded: [], modem: "function" });
  });

  test("an ssh:// engine fails with a message naming the stubbed transport", async () => {
    // Bay's own configuration never gets here (it rejects ssh:// first); a hand-built client does.
    expect(() => connectionOptions("ssh://user@127.0.0.1", undefined)).toThrow("unsupported docker host scheme");
    const r = await inFreshBun(`
      const docker = new Docker({ protocol: "ssh", host: "127.0.0.1", port: 1, username: "nobody" });
      const outcome = await docker.ping().then(() => ({ ok: true }), (e) => ({ name: e.name, message: e.message }));
      console.log(JSON.stringify(outcome));
    `);
    expect(r.name).toBe("UnusedDependencyError");
    expect(r.message).toContain("ssh2 is not part of Bay");
    expect(r.message).toContain("ssh:// transport");
  });

  test("dockerode's BuildKit session module gets the gRPC stand-ins, which fail when used", async () => {
    const r = await inFreshBun(`
      new Docker({ socketPath: "/nonexistent/docker.sock" }); // an import only named is elided
      // Names in variables: a literal require in this script would be resolved when it is
      // parsed, before the stand-ins are installed; dockerode's own requires are parsed after.
      const names = ["@grpc/grpc-js", "@grpc/proto-loader"];
      const grpc = require(names[0]);
      const protoLoader = require(names[1]);
      const attempt = (f) => { try { f(); return "no error"; } catch (e) { return e.message; } };
      console.log(JSON.stringify({
        server: attempt(() => new grpc.Server()),
        credentials: attempt(() => grpc.ServerCredentials.createInsecure()),
        loadSync: attempt(() => protoLoader.loadSync("auth.proto")),
      }));
    `);
    for (const [what, message] of Object.entries(r)) {
      expect(message, what).toContain("is not part of Bay");
      expect(message, what).toContain("BuildKit session");
    }
  });

  test("dockerode's context-directory packers get the stand-ins, which fail when used", async () => {
    // Bay's one build hands dockerode a tar stream (images/image-builder.ts); only a
    // build from a directory (buildImage({context})) packs it with tar-fs, filtered by dockerignore.
    const r = await inFreshBun(`
      new Docker({ socketPath: "/nonexistent/docker.sock" });
      const names = ["tar-fs", "@balena/dockerignore"];
      const tar = require(names[0]);
      const dockerIgnore = require(names[1]);
      const attempt = (f) => { try { f(); return "no error"; } catch (e) { return e.name + ": " + e.message; } };
      console.log(JSON.stringify({
        ignoreType: typeof dockerIgnore,
        pack: attempt(() => tar.pack("/nonexistent-context", { entries: ["Dockerfile"] })),
        ignore: attempt(() => dockerIgnore({ ignorecase: false })),
      }));
    `);
    expect(r.ignoreType).toBe("function");
    expect(r.pack).toStartWith("UnusedDependencyError: tar-fs is not part of Bay");
    expect(r.ignore).toStartWith("UnusedDependencyError: @balena/dockerignore is not part of Bay");
    for (const what of ["pack", "ignore"]) expect(r[what], what).toContain("build context from a directory");
  });

  test("every member of every stand-in throws UnusedDependencyError naming its module", () => {
    for (const [name, exports] of Object.entries(UNUSED_DEPENDENCIES)) {
      const members: unknown[] = [];
      // A module that is itself a function (dockerignore) stands in as one.
      if (typeof exports === "function") members.push(exports);
      else
        for (const value of Object.values(exports as Record<string, unknown>)) {
          if (typeof value === "function") members.push(value);
          else members.push(...Object.values(value as Record<string, unknown>));
        }
      expect(members.length, name).toBeGreaterThan(0);
      for (const member of members) {
        const f = member as (...args: unknown[]) => unknown;
        let thrown: unknown;
        try {
          // Classes throw when constructed, functions when called.
          if (f.prototype) Reflect.construct(f, []);
          else f();
        } catch (e) {
          thrown = e;
        }
        expect(thrown, name).toBeInstanceOf(UnusedDependencyError);
        expect((thrown as Error).message, name).toContain(`${name} is not part of Bay`);
      }
    }
  });
});
