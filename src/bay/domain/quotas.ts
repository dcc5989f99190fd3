/** The per-owner quota errors: 429 with Retry-After and the limit in details. */
import { BayError } from "../errors.ts";

/** The owner has as many live sandboxes as allowed. */
export const sandboxQuotaReached = (max: number) =>
  new BayError("quota_exceeded", `sandbox quota reached: at most ${max} live sandboxes per owner`, {
    retryAfter: 60,
    details: { reason: "sandboxes", limit: max },
  });

/** The owner has as many live workspaces (managed and external) as allowed. */
export const workspaceQuotaReached = (max: number) =>
  new BayError("quota_exceeded", `workspace quota reached: at most ${max} live workspaces per owner`, {
    retryAfter: 60,
    details: { reason: "workspaces", limit: max },
  });
