/**
 * The generated Python client (clients/python, the standard library only) against a
 * real Bay process on real Docker: first_session.py runs the README's first session,
 * streamed runs, bytes, the error model and the hostile cases, and exits 0 only if
 * all of them held; packaging.py installs it with pip into a fresh virtual environment.
 * Needs python3 with pip and venv (scripts/prereqs.sh installs them).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BayProcess, startBayProcess } from "../../../tests/support/bay-process.ts";
import { removeLabelled } from "../../../tests/e2e/support/docker-fixtures.ts";
import { docker } from "../../../tests/e2e/support/e2e.ts";
import { uniqueInstanceId } from "../../../tests/support/harness.ts";
import { SHIP_TAG } from "../../../tests/support/images.ts";

const ALICE = "py-client-alice-0123456789abcdef";
const BOB = "py-client-bob-0123456789abcdef";

let dir: string;
let bay: BayProcess;

/** This Bay's instance: what is labelled with it is removed at the end, whatever Bay left. */
const instanceId = uniqueInstanceId();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-py-client-"));
  bay = await startBayProcess({
    dbPath: join(dir, "bay.db"),
    instanceId,
    dir,
    config: {
      // Idle connections are closed after 1 s: the client must notice before reusing one.
      server: { idle_timeout: 1 },
      auth: {
        mode: "api_key",
        api_keys: [
          { key: ALICE, owner: "py-alice" },
          { key: BOB, owner: "py-bob" },
        ],
      },
    },
    env: { BAY_SHIP_TAG: SHIP_TAG },
  });
});

afterAll(async () => {
  // Whatever the script left (it deletes its sandbox unless it failed first).
  for (const key of [ALICE, BOB]) {
    const auth = { authorization: `Bearer ${key}` };
    const list = (await (await fetch(`${bay.url}/v1/sandboxes`, { headers: auth })).json()) as { items: Array<{ id: string }> };
    for (const { id } of list.items) await fetch(`${bay.url}/v1/sandboxes/${id}`, { method: "DELETE", headers: auth });
  }
  await bay?.kill("SIGTERM");
  // A delete whose volume was still in use for a moment leaves it to Bay's reaper, stopped now.
  await removeLabelled(docker, { "bay.instance_id": instanceId });
  rmSync(dir, { recursive: true, force: true });
});

/** Runs one of this folder's Python scripts; it prints its one line and exits 0 when all its checks held. */
async function python(script: string, env: Record<string, string> = {}) {
  const run = Bun.spawn(["python3", "-X", "dev", "-W", "error", join(import.meta.dir, script)], {
    env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited]);
  return { code, out, err };
}

test("the Python client's parsing: event streams cut anywhere, error bodies and Retry-After, ids and paths", async () => {
  expect(await python("units.py")).toEqual({ code: 0, out: "units: ok\n", err: "" });
});

test("the Python client's connections: a DELETE sent again after its connection closed, TLS with the caller's context", async () => {
  expect(await python("connections.py")).toEqual({ code: 0, out: "connections: ok\n", err: "" });
}, 60_000);

test("the Python client as a package: pip installs it with no index, the installed copy works, uninstall leaves nothing; wheel and sdist reproducible", async () => {
  expect(await python("packaging.py")).toEqual({ code: 0, out: "packaging: ok\n", err: "" });
}, 120_000);

test("the Python client's first session, its errors and the hostile cases", async () => {
  expect(await python("first_session.py", { BAY_URL: bay.url, ALICE_KEY: ALICE, BOB_KEY: BOB })).toEqual({
    code: 0,
    out: "first session: ok\n",
    err: "",
  });
}, 180_000);
