/**
 * What the soak works on: three sandboxes (A on its managed workspace, B on an
 * external workspace W, C on a profile with a 2 s idle timeout) and the three
 * volumes behind them, each reachable through its sandbox and its workspace.
 */
import type { BayUnderTest } from "../lib/bay-under-test.ts";
import type { Rng } from "../lib/rng.ts";
import type { SoakClient } from "./client.ts";
import type { Ledger, Volume } from "./ledger.ts";

export interface SoakSandbox {
  name: "A" | "B" | "C";
  id: string;
  route: string;
  volume: Volume;
}

export interface SoakWorld {
  bay: BayUnderTest;
  client: SoakClient;
  rng: Rng;
  ledger: Ledger;
  sandboxes: SoakSandbox[];
  /** The profile's memory limit, which the OOM fault allocates past. */
  memoryMb: number;
  /** The profile's /tmp size, which the full-/tmp fault fills. */
  tmpfsMb: number;
}

export const IDLE_PROFILE = "soak-idle";
export const PROFILE = "soak";

/** Creates A, W + B and C through Bay. */
export async function createWorld(client: SoakClient): Promise<SoakSandbox[]> {
  const a = await client.must("POST", "/v1/sandboxes", { profile: PROFILE }, 201);
  const w = await client.must("POST", "/v1/workspaces", {}, 201);
  const b = await client.must("POST", "/v1/sandboxes", { profile: PROFILE, workspace_id: w.id }, 201);
  const c = await client.must("POST", "/v1/sandboxes", { profile: IDLE_PROFILE }, 201);
  const sb = (name: SoakSandbox["name"], s: { id: string; workspace_id: string }): SoakSandbox => ({
    name,
    id: s.id,
    route: `/v1/sandboxes/${s.id}`,
    volume: {
      name: `${name}:${s.workspace_id}`,
      sandboxRoute: `/v1/sandboxes/${s.id}`,
      workspaceRoute: `/v1/workspaces/${s.workspace_id}`,
    },
  });
  return [sb("A", a), sb("B", b), sb("C", c)];
}

/** Deletes every sandbox and workspace of the soak's owner through Bay. */
export async function deleteEverything(client: SoakClient): Promise<void> {
  const sandboxes = await client.must("GET", "/v1/sandboxes?limit=200", undefined, 200);
  for (const s of sandboxes.items) await client.retrying(() => client.json("DELETE", `/v1/sandboxes/${s.id}`));
  const workspaces = await client.must("GET", "/v1/workspaces?limit=200", undefined, 200);
  for (const w of workspaces.items) await client.retrying(() => client.json("DELETE", `/v1/workspaces/${w.id}`));
}
