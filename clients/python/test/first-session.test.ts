/**
 * The generated Python client (clients/python, the standard library only) against a
 * real Bay process on real Docker: first_session.py runs the README's first session,
 * streamed runs, bytes, the error model and the hostile cases, and exits 0 only if
 * all of them held. Needs python3 (scripts/prereqs.sh installs it).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BayProcess, startBayProcess } from "../../../tests/support/bay-process.ts";
import { uniqueInstanceId } from "../../../tests/support/harness.ts";
import { SHIP_TAG } from "../../../tests/support/images.ts";

const ALICE = "py-client-alice-0123456789abcdef";
const BOB = "py-client-bob-0123456789abcdef";

let dir: string;
let bay: BayProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-py-client-"));
  bay = await startBayProcess({
    dbPath: join(dir, "bay.db"),
    instanceId: uniqueInstanceId(),
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
  await bay?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("the Python client's first session, its errors and the hostile cases", async () => {
  const run = Bun.spawn(["python3", "-X", "dev", "-W", "error", join(import.meta.dir, "first_session.py")], {
    env: { ...process.env, BAY_URL: bay.url, ALICE_KEY: ALICE, BOB_KEY: BOB, PYTHONDONTWRITEBYTECODE: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited]);
  expect({ code, out, err }).toEqual({ code: 0, out: "first session: ok\n", err: "" });
}, 180_000);
