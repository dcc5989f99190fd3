/**
 * Ship's API in-process on the host: the real app against a temporary workspace,
 * with the kernel run by Debian's python3 (needs python3-ipython and python3-matplotlib).
 */
import { afterAll, beforeAll, describe } from "bun:test";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createShipApp, type ShipApp } from "../../src/ship/app.ts";
import { shipBehaviour } from "./support/behaviour.ts";
import { ShipClient, testCredentials } from "./support/caller.ts";

const PYTHON = process.env.SHIP_TEST_PYTHON ?? "/usr/bin/python3";

function requireHostPython(): void {
  const probe = Bun.spawnSync([PYTHON, "-c", "import IPython, matplotlib"], { stderr: "pipe" });
  if (probe.exitCode !== 0) {
    throw new Error(
      `${PYTHON} cannot import IPython and matplotlib (${probe.stderr.toString().trim().split("\n").pop()}). ` +
        "Install them: apt-get install -y python3-ipython python3-matplotlib (or set SHIP_TEST_PYTHON).",
    );
  }
}

let workspace = "";
let ship: ShipApp | undefined;
let client: ShipClient | undefined;
// Filled in beforeAll; the cases read it when they run.
const credentials = testCredentials();
const options = { mountPath: "", matplotlib: true, sessionId: credentials.session_id, maxContexts: 3 };

const hostHome = process.env.HOME;

beforeAll(async () => {
  requireHostPython();
  workspace = await realpath(await mkdtemp(join(tmpdir(), "ship-test-ws-")));
  options.mountPath = workspace;
  // As in the image (HOME=/workspace): user commands' login shells read the workspace's
  // profile, not the host user's (whose may run slow or lock-taking tools such as pyenv).
  process.env.HOME = workspace;
  ship = createShipApp({ workspace, python: PYTHON, maxBackground: 3, maxContexts: 3, credentials });
  client = new ShipClient((path, init) => Promise.resolve(ship!.app.request(path, init)), credentials.secret);
});

afterAll(async () => {
  process.env.HOME = hostHome;
  ship?.close();
  if (workspace) await rm(workspace, { recursive: true, force: true });
});

describe("ship in-process", () => {
  shipBehaviour(() => {
    if (!client) throw new Error("ship app was not created (see beforeAll error)");
    return client;
  }, options);
});
