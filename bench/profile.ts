/**
 * Where a Bay process spends its CPU on a hot path, from Bun's own sampling
 * profiler: runs Bay (this checkout, or BENCH_BASELINE_ROOT's for a before /
 * after) under `--cpu-prof-md`, drives one path for a few seconds with the
 * bench's load client, stops Bay and prints the profile's top functions by
 * self time.
 *
 *   bun run bench/profile.ts get    # GET /v1/sandboxes/{id}, API key, 32 connections
 *   bun run bench/profile.ts exec   # POST …/python/exec 1+1 on a warm sandbox, 8 at a time
 *
 * The whole markdown profile is kept in the printed directory.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiKeyService } from "../src/bay/domain/auth/api-keys.ts";
import { openDatabase } from "../src/bay/store/database.ts";
import { createStores } from "../src/bay/store/index.ts";
import { freePort, removeLabelledQuietly, requireShipImages, SHIP_IMAGE } from "../tests/e2e/support/e2e.ts";
import { load } from "./load-client.ts";

const what = process.argv[2] ?? "get";
const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? 8);
const root = process.env.BENCH_BASELINE_ROOT ?? join(import.meta.dir, "..");
if (what !== "get" && what !== "exec") throw new Error("usage: bun run bench/profile.ts get|exec");

await requireShipImages();
const dir = mkdtempSync(join(tmpdir(), "bay-profile-"));
const instanceId = `bench-prof-${crypto.randomUUID().slice(0, 8)}`;
const port = freePort();
const url = `http://127.0.0.1:${port}`;
await Bun.write(
  join(dir, "bay.yaml"),
  JSON.stringify({
    profiles: [{ id: "python-default", image: SHIP_IMAGE }],
    limits: { rate_limit_per_minute: 1_000_000_000 },
  }),
);
const dbPath = join(dir, "bay.db");
const proc = Bun.spawn(["bun", "--cpu-prof-md", `--cpu-prof-dir=${dir}`, "src/bay/main.ts"], {
  cwd: root,
  env: {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    BAY_CONFIG: join(dir, "bay.yaml"),
    BAY_HOST: "127.0.0.1",
    BAY_PORT: String(port),
    BAY_AUTH_MODE: "api_key",
    BAY_DB_URL: `file:${dbPath}`,
    BAY_INSTANCE_ID: instanceId,
    BAY_LOG_LEVEL: "info",
  },
  stdout: "ignore",
  stderr: Bun.file(join(dir, "bay.log")),
});
try {
  for (let i = 0; ; i++) {
    if ((await fetch(`${url}/health`).catch(() => null))?.status === 200) break;
    if (i > 200) throw new Error("Bay did not answer /health");
    await Bun.sleep(100);
  }
  const db = await openDatabase({ url: `file:${dbPath}` });
  const { key } = await new ApiKeyService(createStores(db).apiKeys).create("bench", "bench");
  db.close();
  const auth = { authorization: `Bearer ${key}` };
  const created = (await (
    await fetch(`${url}/v1/sandboxes`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{}" })
  ).json()) as { id: string };
  const exec = () =>
    fetch(`${url}/v1/sandboxes/${created.id}/python/exec`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: '{"code":"1+1"}',
    }).then((r) => r.json());
  let requests = 0;
  if (what === "get") {
    const r = await load(`${url}/v1/sandboxes/${created.id}`, 32, seconds, [`authorization: ${auth.authorization}`]);
    requests = r.requests;
  } else {
    await exec();
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < end) {
          await exec();
          requests++;
        }
      }),
    );
  }
  await fetch(`${url}/v1/sandboxes/${created.id}`, { method: "DELETE", headers: auth });
  console.log(`${what}: ${requests} requests in ${seconds} s (${(requests / seconds).toFixed(0)}/s) against ${root}`);
} finally {
  process.kill(proc.pid, "SIGTERM");
  await proc.exited;
  await removeLabelledQuietly({ "bay.instance_id": instanceId });
}
const md = readdirSync(dir).find((f) => f.endsWith(".md"));
if (!md) throw new Error(`no profile written in ${dir}`);
const text = readFileSync(join(dir, md), "utf8");
// The profile's own summary tables come first; print up to the per-function detail.
const cut = text.indexOf("\n## ", text.indexOf("\n## ") + 1);
console.log(text.slice(0, cut > 0 ? Math.min(cut, 12_000) : 12_000));
console.log(`\nfull profile: ${join(dir, md)}`);
