import type { ShipClient } from "./caller.ts";
import { contextCases } from "./context-cases.ts";
import { envCases } from "./env-cases.ts";
import { filesystemCases } from "./filesystem-cases.ts";
import { pythonCases } from "./python-cases.ts";
import { shellCases } from "./shell-cases.ts";
import { streamCases } from "./stream-cases.ts";
import { systemCases } from "./system-cases.ts";

type Group = "system" | "python" | "shell" | "filesystem" | "contexts" | "streaming" | "env";

/** Which groups of the shared suite to register, and what the target offers. */
export interface BehaviourOptions {
  mountPath: string;
  matplotlib: boolean;
  /** The session the target was started for (/meta names it). */
  sessionId: string;
  /** The target's SHIP_MAX_CONTEXTS. */
  maxContexts: number;
  groups?: Group[];
}

/** Registers the whole Ship behaviour suite against one target (in-process or a container). */
export function shipBehaviour(client: () => ShipClient, opts: BehaviourOptions): void {
  const groups = new Set(opts.groups ?? ["system", "python", "shell", "filesystem", "contexts", "streaming", "env"]);
  if (groups.has("system")) systemCases(client, opts);
  if (groups.has("python")) pythonCases(client, opts);
  if (groups.has("shell")) shellCases(client);
  if (groups.has("filesystem")) filesystemCases(client);
  if (groups.has("contexts")) contextCases(client, opts);
  if (groups.has("streaming")) streamCases(client);
  if (groups.has("env")) envCases(client);
}
