/**
 * Ship's interactive work in-process on the host, served by a real Bun.serve
 * (WebSockets need one), for ship-processes, ship-terminal and ship-watch tests.
 * Login shells read the user's profile, so HOME points at an empty directory
 * (a slow profile on the host would only slow the tests down). The exported
 * bindings are live: set by useInteractiveShip's beforeAll.
 */
import { beforeAll, afterAll, expect } from "bun:test";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createShipApp, type ShipApp } from "../../../src/ship/app.ts";
import { pollUntil } from "../../support/harness.ts";
import { SseReader } from "../../support/sse.ts";
import { ShipClient, testCredentials, withSecret } from "./caller.ts";

export const RING = 64 * 1024;
export const credentials = testCredentials();
export let workspace = "";
let home = "";
let savedHome: string | undefined;
export let ship: ShipApp;
let server: ReturnType<typeof Bun.serve>;
export let base = "";
export let client: ShipClient;

/** Serves a fresh Ship for the calling test file (its beforeAll and afterAll). */
export function useInteractiveShip(): void {
  beforeAll(() => {
    workspace = realpathSync(mkdtempSync(join(tmpdir(), "ship-interactive-ws-")));
    home = mkdtempSync(join(tmpdir(), "ship-interactive-home-"));
    savedHome = process.env.HOME;
    process.env.HOME = home;
    ship = createShipApp({
      workspace,
      credentials,
      startKernel: false,
      maxOutputBytes: RING,
      maxTerminals: 3,
      terminalAttachSeconds: 2,
      maxWatches: 3,
      watchQueue: 8,
    });
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: ship.app.fetch, websocket: ship.websocket, idleTimeout: 0 });
    base = `127.0.0.1:${server.port}`;
    client = new ShipClient((path, init) => fetch(`http://${base}${path}`, init), credentials.secret);
  });

  afterAll(async () => {
    ship?.close();
    await server?.stop(true);
    process.env.HOME = savedHome;
    rmSync(workspace, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });
}

export const auth = { authorization: `Bearer ${credentials.secret}` };
export const call = (path: string, init: RequestInit = {}) =>
  withSecret((p, i) => fetch(`http://${base}${p}`, i), credentials.secret)(path, init);
export const follow = async (id: string, offset = 0, extra = "") => {
  const res = await call(`/shell/processes/${id}/output?offset=${offset}${extra}`, { headers: { accept: "text/event-stream" } });
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  return new SseReader(res);
};
export const background = async (command: string, extra: Record<string, unknown> = {}) => {
  const res = await client.shell(command, { background: true, ...extra });
  expect(res.status).toBe(200);
  return res.body.process_id as string;
};
export const processDone = (id: string) =>
  pollUntil(
    async () => (await client.json("GET", `/shell/processes/${id}`)).body,
    (p) => p.status !== "running",
    20_000,
    `process ${id} to end`,
  );
