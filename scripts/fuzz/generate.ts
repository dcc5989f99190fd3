/**
 * The request generator: for a seed, an endless reproducible sequence of
 * requests, each aimed at one operation of the spec (chosen uniformly, so
 * every operation is covered) and built by one strategy, among those that
 * apply to it, that changes one part of an otherwise valid request.
 */
import type { Rng } from "../lib/rng.ts";
import * as body from "./body-strategies.ts";
import { e2bAccess, isDataPlane } from "./e2b.ts";
import { e2bMultipart } from "./e2b-files.ts";
import { ENVD_SHARE, envdRpcRequest } from "./envd-rpc.ts";
import { assemble, baseDraft, type Draft } from "./draft.ts";
import * as head from "./head-strategies.ts";
import { mcpMutation } from "./mcp.ts";
import type { FuzzRequest } from "./request.ts";
import type { Contract, Operation } from "./spec.ts";

export type { Limits } from "./body-strategies.ts";

type StrategyFn = (rng: Rng, d: Draft, ctx: body.GenContext) => void;

/** Each strategy with its weight and the operations it applies to. */
const STRATEGIES: Record<string, { weight: number; fn: StrategyFn; applies: (op: Operation) => boolean }> = {
  valid: { weight: 8, fn: body.valid, applies: () => true },
  pathParam: { weight: 10, fn: head.pathParam, applies: (op) => op.params.some((p) => p.in === "path") },
  query: { weight: 10, fn: head.query, applies: (op) => op.params.some((p) => p.in === "query") },
  bodyField: { weight: 16, fn: body.bodyField, applies: (op) => body.hasJsonBody(op) && op.body?.schema.properties !== undefined },
  mcp: { weight: 20, fn: mcpMutation, applies: (op) => op.id === "postMcp" },
  bodyWhole: { weight: 9, fn: body.bodyWhole, applies: () => true },
  headers: { weight: 9, fn: head.headers, applies: () => true },
  // Multipart and replays apply to two operations each: weighted up to be seen as often as the rest.
  multipart: { weight: 30, fn: body.multipart, applies: body.isUpload },
  method: { weight: 5, fn: head.method, applies: () => true },
  http: { weight: 8, fn: head.http, applies: () => true },
  // The data plane's credentials: its sandbox id, tokens, user and signed URLs.
  e2bAccess: { weight: 12, fn: (rng, d) => e2bAccess(rng, d), applies: isDataPlane },
  e2bMultipart: { weight: 15, fn: (rng, d) => e2bMultipart(rng, d), applies: (op) => op.id === "e2bWriteFiles" },
  replay: { weight: 15, fn: body.replay, applies: (op) => op.params.some((p) => p.name === "Idempotency-Key") },
};

export class RequestGenerator {
  private readonly ctx: body.GenContext;

  constructor(contract: Contract, limits: body.Limits) {
    this.ctx = { contract, limits };
  }

  /** Request number `index` of the sequence of `rng`'s seed; `operationId`: aimed at that operation only (tests). */
  next(rng: Rng, index: number, operationId?: string): FuzzRequest {
    // envd's Connect RPC services (in no spec) take their share of the sequence.
    if (operationId === undefined && rng.chance(ENVD_SHARE)) return envdRpcRequest(rng, index);
    const ops = this.ctx.contract.operations;
    const op = operationId === undefined ? rng.pick(ops) : ops.find((o) => o.id === operationId);
    if (!op) throw new Error(`no operation ${operationId} in the contract`);
    const weights = Object.fromEntries(Object.entries(STRATEGIES).flatMap(([name, s]) => (s.applies(op) ? [[name, s.weight]] : [])));
    const strategy = rng.weighted(weights);
    const d = baseDraft(rng, op, index, strategy);
    STRATEGIES[strategy]!.fn(rng, d, this.ctx);
    if (d.json !== undefined && d.bodyText === undefined) body.judgeJson(d);
    return assemble(d, index);
  }
}
