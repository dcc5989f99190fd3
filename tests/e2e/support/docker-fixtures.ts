import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { buildContext } from "../../../src/bay/images/image-builder.ts";

/** Image of the test runtime; rebuilt only when the server source changes. */
export const ECHO_IMAGE = "bay-test-echo:latest";
/** Port the echo server listens on inside its container. */
export const ECHO_PORT = 8080;
const BASE_IMAGE = process.env.BAY_BASE_IMAGE ?? "bay-base:bookworm";
const SOURCE = join(import.meta.dir, "echo-server.ts");
const HASH_LABEL = "bay.test.echo-source-sha256";

/** Fails with a message that says what to do, instead of a socket error deep in a test. */
export async function requireDocker(docker: Docker): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`e2e tests need a running Docker engine at /var/run/docker.sock (start dockerd): ${String(err)}`);
  }
  try {
    await docker.getImage(BASE_IMAGE).inspect();
  } catch {
    throw new Error(`e2e tests need the base image ${BASE_IMAGE} (see docs: debootstrap + docker import)`);
  }
}

/** Image of the fake Ship whose /meta answer is set by env (META_API_VERSION, META_CAPABILITIES). */
export const META_IMAGE = "bay-test-meta:latest";
/** Port the meta server listens on inside its container (Ship's default runtime_port). */
export const META_PORT = 8123;

/** Builds `bay-test-echo` from a `bun build --compile` of echo-server.ts, unless an up-to-date one exists. */
export function ensureEchoImage(docker: Docker): Promise<string> {
  return ensureCompiledImage(docker, ECHO_IMAGE, SOURCE, "echo-server", ECHO_PORT);
}

/** Builds `bay-test-meta` from meta-server.ts the same way, unless an up-to-date one exists. */
export function ensureMetaImage(docker: Docker): Promise<string> {
  return ensureCompiledImage(docker, META_IMAGE, join(import.meta.dir, "meta-server.ts"), "meta-server", META_PORT);
}

/** A base-image container running `source` compiled with `bun build --compile`; rebuilt only when the source changes. */
async function ensureCompiledImage(docker: Docker, image: string, source: string, binary: string, port: number): Promise<string> {
  const text = await Bun.file(source).text();
  const hash = new Bun.CryptoHasher("sha256").update(text).update(BASE_IMAGE).digest("hex");
  try {
    const info = await docker.getImage(image).inspect();
    if (info.Config.Labels?.[HASH_LABEL] === hash) return image;
  } catch {
    // Not there yet: build it below.
  }

  const dir = await mkdtemp(join(tmpdir(), `bay-${binary}-`));
  try {
    const built = Bun.spawnSync(["bun", "build", "--compile", source, "--outfile", join(dir, binary)], {
      stderr: "pipe",
    });
    if (built.exitCode !== 0) throw new Error(`bun build --compile failed: ${built.stderr.toString()}`);
    const dockerfile = [
      `FROM ${BASE_IMAGE}`,
      `COPY ${binary} /usr/local/bin/${binary}`,
      // Like Ship: unprivileged uid 1000 owning /workspace, so a fresh volume inherits that owner.
      "RUN mkdir -p /workspace && chown 1000:1000 /workspace",
      "USER 1000:1000",
      `ENV PORT=${port}`,
      `LABEL ${HASH_LABEL}=${hash}`,
      `CMD ["/usr/local/bin/${binary}"]`,
    ].join("\n");
    // Packed here: Bay stubs out dockerode's packer for a context directory (unused-dependencies.ts).
    const stream = await docker.buildImage(await buildContext(dockerfile, join(dir, binary), binary), { t: image, rm: true });
    const output = await new Promise<Array<{ error?: string }>>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
    );
    const failed = output.find((o) => o.error);
    if (failed) throw new Error(`building ${image} failed: ${failed.error}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return image;
}

/** Rounds of removing what is labelled, and the pause between two. */
const REMOVE_ATTEMPTS = 10;
const REMOVE_PAUSE_MS = 300;

/** Removes every container, then every volume and network, carrying all of the given labels. */
export async function removeLabelled(docker: Docker, labels: Record<string, string>): Promise<void> {
  const label = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  // A container that another remover (Bay's own destroy, as Bay is stopped) is still taking
  // away keeps its volume in use for a moment: what is left is tried again, briefly.
  for (let attempt = 1; attempt <= REMOVE_ATTEMPTS; attempt++) {
    const containers = await docker.listContainers({ all: true, filters: { label } });
    await Promise.all(
      containers.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => {}),
      ),
    );
    const { Volumes } = await docker.listVolumes({ filters: { label } });
    const removed = await Promise.all(
      (Volumes ?? []).map((v) =>
        docker
          .getVolume(v.Name)
          .remove()
          .then(
            () => true,
            () => false,
          ),
      ),
    );
    if (removed.every(Boolean)) break;
    await Bun.sleep(REMOVE_PAUSE_MS);
  }
  const networks = await docker.listNetworks({ filters: { label } });
  await Promise.all(
    networks.map((n) =>
      docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => {}),
    ),
  );
}

/** Polls `url` until it answers 2xx; runtimes need a moment after start to listen. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return res;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err;
    }
    await Bun.sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** Reads a tar stream fully and returns its regular files as text, keyed by path. */
export async function untarText(stream: NodeJS.ReadableStream): Promise<Map<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  const files = await new Bun.Archive(Buffer.concat(chunks)).files();
  const out = new Map<string, string>();
  for (const [path, file] of files) out.set(path, await file.text());
  return out;
}

/** A tar holding the given files (path → text). */
export async function tarOf(files: Record<string, string>): Promise<Uint8Array> {
  return new Bun.Archive(files).bytes();
}
