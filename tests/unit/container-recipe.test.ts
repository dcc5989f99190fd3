/**
 * The Docker driver's container recipe (what a warm-pool fingerprint covers of the
 * driver: pool-fingerprint.ts): the engine request it would make for a shape, how the
 * container is attached and reached, with nothing of one container's own. Equal for equal
 * configurations whatever order the environment is written in; different when the driver
 * would create the container otherwise (review s97 M1). No engine is called.
 */
import { expect, test } from "bun:test";
import { poolFingerprint } from "../../src/bay/domain/pool-fingerprint.ts";
import type { ContainerShape } from "../../src/bay/drivers/driver.ts";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import { configSchema } from "../../src/bay/config.ts";

const shape = (env: Record<string, string>, over: Partial<ContainerShape> = {}): ContainerShape => ({
  image: "bay-ship:latest",
  runtimePort: 8123,
  env,
  cpus: 1,
  memoryMb: 512,
  pidsLimit: 256,
  credentialsOnStdin: true,
  ...over,
});

const driver = (o: Partial<ConstructorParameters<typeof DockerDriver>[0]> = {}) =>
  new DockerDriver({ socketPath: "/nonexistent/docker.sock", connectMode: "host_port", defaultPidsLimit: 256, ...o });

test("the same configuration gives the same recipe, however its environment is ordered", () => {
  const a = driver().containerRecipe(shape({ A: "1", B: "2" }));
  const b = driver().containerRecipe(shape({ B: "2", A: "1" }));
  expect(JSON.stringify(a)).toBe(JSON.stringify(b));
});

test("what the driver would create otherwise is another recipe: connect mode, engine, pids default, runtime, network, an env value", () => {
  const base = JSON.stringify(driver().containerRecipe(shape({ A: "1" })));
  const others = [
    driver({ connectMode: "unix_socket", socketDir: "/run/bay/test-recipe" }).containerRecipe(shape({ A: "1" })),
    driver({ socketPath: "/other/docker.sock" }).containerRecipe(shape({ A: "1" })),
    driver({ defaultPidsLimit: 64 }).containerRecipe(shape({ A: "1" }, { pidsLimit: 0 })),
    driver().containerRecipe(shape({ A: "1" }, { runtime: "runsc" })),
    driver().containerRecipe(shape({ A: "1" }, { network: "none" })),
    driver().containerRecipe(shape({ A: "2" })),
  ].map((r) => JSON.stringify(r));
  for (const o of others) expect(o).not.toBe(base);
  expect(new Set(others).size).toBe(others.length);
});

test("a fingerprint: a profile's description or idle timeout is no difference; its languages as a set; the image's id is", () => {
  const [p] = configSchema.parse({ profiles: [{ id: "p", image: "i", languages: ["python", "typescript"] }] }).profiles;
  const recipe = driver().containerRecipe(shape({ A: "1" }));
  const fp = poolFingerprint(p!, recipe, "sha256:one");
  expect(poolFingerprint({ ...p!, idle_timeout: p!.idle_timeout + 1, description: "other words" }, recipe, "sha256:one")).toBe(fp);
  expect(poolFingerprint({ ...p!, languages: [...p!.languages].reverse() }, recipe, "sha256:one")).toBe(fp);
  expect(poolFingerprint(p!, recipe, "sha256:two")).not.toBe(fp);
  expect(poolFingerprint({ ...p!, languages: ["python"] }, recipe, "sha256:one")).not.toBe(fp);
});
