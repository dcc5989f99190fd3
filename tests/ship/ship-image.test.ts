/**
 * The shared behaviour suite against the real images over HTTP: the full suite on
 * bay-ship:latest, the python cases (with matplotlib) on bay-ship-data:latest.
 * Needs Docker and both images (`bun run image:build`); fails loudly without them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type BehaviourOptions, shipBehaviour } from "./support/behaviour.ts";
import { ShipClient, testCredentials } from "./support/caller.ts";
import { SHIP_DATA_IMAGE, SHIP_IMAGE } from "../support/images.ts";
import { startShip, type ShipContainer } from "./support/container.ts";

function clientFor(image: string, groups?: BehaviourOptions["groups"], matplotlib = false) {
  let container: ShipContainer | undefined;
  let client: ShipClient | undefined;
  const credentials = testCredentials();
  beforeAll(async () => {
    container = await startShip(image, { SHIP_MAX_BACKGROUND: "3", SHIP_MAX_CONTEXTS: "3" }, credentials);
    const base = container.baseUrl;
    client = new ShipClient((path, init) => fetch(`${base}${path}`, init), credentials.secret);
  });
  afterAll(async () => {
    await container?.remove();
  });
  const get = () => {
    if (!client) throw new Error(`${image} container did not start (see beforeAll error)`);
    return client;
  };
  shipBehaviour(get, {
    mountPath: "/workspace",
    matplotlib,
    sessionId: credentials.session_id,
    maxContexts: 3,
    ...(groups ? { groups } : {}),
  });
  return get;
}

describe(SHIP_IMAGE, () => {
  const client = clientFor(SHIP_IMAGE);

  test("image: user code runs as uid 1000 with /workspace as home", async () => {
    const py = await client().python("import os\nos.getuid(), os.getcwd(), os.environ['HOME']");
    expect(py.body.output.trim()).toBe("(1000, '/workspace', '/workspace')");
    const sh = await client().shell("id -u; touch /etc/x 2>&1 || true");
    expect(sh.body.output).toMatch(/^1000\n.*Permission denied/s);
  });

  test("image: a directory user code locked (chmod 000) is invalid_path, permission denied, to an upload and to upload-check alike", async () => {
    await client().shell("mkdir -p perm/locked && chmod 000 perm/locked");
    try {
      const up = await client().call("/filesystem/upload?path=perm/locked/x", { method: "POST", body: "x" });
      const upBody = (await up.json()) as { error: { code: string; message: string; details: Record<string, unknown> } };
      expect([up.status, upBody.error.code, upBody.error.details.reason]).toEqual([400, "invalid_path", "permission denied"]);
      const check = await client().json("POST", "/filesystem/upload-check", { paths: ["perm/ok.txt", "perm/locked/x"] });
      expect([check.status, check.body]).toEqual([400, { error: { ...upBody.error, details: { ...upBody.error.details, index: 1 } } }]);
      const read = await client().json("GET", "/filesystem/files?path=perm/locked/x");
      expect([read.status, read.body.error.code]).toEqual([400, "invalid_path"]);
      const list = await client().json("GET", "/filesystem/directories?path=perm");
      expect(list.body.entries.map((e: { name: string }) => e.name)).toEqual(["locked"]);
    } finally {
      await client().shell("chmod 755 perm/locked; rm -rf perm");
    }
  });
});

describe(SHIP_DATA_IMAGE, () => {
  const client = clientFor(SHIP_DATA_IMAGE, ["system", "python"], true);

  test("image: numpy and pandas import", async () => {
    const res = await client().python("import numpy, pandas\npandas.DataFrame({'a': numpy.arange(3)})['a'].sum()");
    expect(res.body.success).toBe(true);
    expect(res.body.output.trim()).toBe("3");
  });
});
