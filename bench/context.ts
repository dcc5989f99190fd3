/** What every benchmark gets: a Bay subprocess on loopback and a Docker client. */
import type Docker from "dockerode";
import type { BayProcess } from "../tests/e2e/support/e2e.ts";

export interface BenchContext {
  bay: BayProcess;
  docker: Docker;
  /** Label on every container a benchmark makes outside Bay, for cleanup. */
  benchLabel: Record<string, string>;
  runs: number;
  owner: string;
}

export async function bayJson<T = any>(
  ctx: BenchContext,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${ctx.bay.url}${path}`, {
    method,
    headers: { "x-owner": ctx.owner, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function createSandbox(ctx: BenchContext, profile?: string): Promise<string> {
  const r = await bayJson<{ id: string }>(ctx, "POST", "/v1/sandboxes", profile ? { profile } : {});
  if (r.status !== 201) throw new Error(`create sandbox: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

export async function deleteSandbox(ctx: BenchContext, id: string): Promise<void> {
  await fetch(`${ctx.bay.url}/v1/sandboxes/${id}`, { method: "DELETE", headers: { "x-owner": ctx.owner } }).catch(() => {});
}

export function expectTwo(body: { success?: boolean; output?: string }, where: string): void {
  if (!body.success || `${body.output}`.trim() !== "2") throw new Error(`${where}: unexpected exec result ${JSON.stringify(body)}`);
}
